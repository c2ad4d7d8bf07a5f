"""Progress bars: the same items in the same order; off with --quiet, restored afterwards."""

import pytest

from neuroprobe._progress import progress, progress_enabled, quiet, set_progress


def test_progress_yields_the_same_items_with_or_without_a_bar():
    items = [3, 1, 2]
    assert progress(items, enabled=False) is items
    bar = progress(items, desc="x")
    assert bar is not items and list(bar) == items  # a tqdm bar (off when not a terminal)


def test_quiet_turns_every_bar_off_and_restores():
    assert progress_enabled()
    items = range(4)
    with quiet():
        assert not progress_enabled()
        assert progress(items) is items
    assert progress_enabled()


def test_cli_quiet_does_not_leak_into_later_calls(tmp_path):
    from neuroprobe.cli.main import main

    assert main(["report", str(tmp_path / "missing"), "--quiet"]) == 1
    assert progress_enabled()


@pytest.fixture(autouse=True)
def _restore():
    yield
    set_progress(True)
