"""Shared pytest configuration.

- GPU tests are skipped without CUDA.
- In CI (environment variable ``CI`` set, as ``.ci/run`` runs), a test skipped because a library
  could not be imported (``pytest.importorskip``) FAILS the run: the test extra carries every
  reference library (rsatoolbox, himalaya, dask, ...), so such a skip means an equality test
  silently did not run. GPU skips stay allowed; so do the libraries in ``OPTIONAL_IN_CI``.
"""

import os
import re

import pytest

# Libraries that tests may import but that CI does not install (documented recipes only).
OPTIONAL_IN_CI = {"ray", "playwright"}  # playwright needs a browser download

_IMPORT_SKIP = re.compile(r"could not import '([^']+)'")
_import_skips = []


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _skip_reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _record(report):
    if not report.skipped:
        return
    match = _IMPORT_SKIP.search(_skip_reason(report))
    if match and match.group(1).split(".")[0] not in OPTIONAL_IN_CI:
        _import_skips.append((report.nodeid, match.group(1)))


def pytest_runtest_logreport(report):
    _record(report)


def pytest_collectreport(report):  # module-level importorskip
    _record(report)


def _in_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_sessionfinish(session, exitstatus):
    if _in_ci() and _import_skips and exitstatus in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not (_in_ci() and _import_skips):
        return
    terminalreporter.section("reference libraries missing in CI", red=True, bold=True)
    for nodeid, module in _import_skips:
        terminalreporter.line(f"{nodeid}: skipped, could not import {module!r}")
    terminalreporter.line(
        f"{len(_import_skips)} test(s) skipped because a library could not be imported; "
        "install the test extra: python3 -m pip install -e \".[all,test]\"", red=True)
