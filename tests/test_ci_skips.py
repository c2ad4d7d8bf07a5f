"""The CI hook of tests/conftest.py: a reference library that cannot be imported fails CI."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

_TESTS = '''
import pytest

def test_reference():
    pytest.importorskip("neuroprobe_no_such_reference_lib")

def test_documented_optional():
    pytest.importorskip("ray")

@pytest.mark.gpu
def test_gpu():
    pass
'''


def _run(tmp_path, ci, select):
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_x.py").write_text(_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: gpu\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", select,
         str(tmp_path / "test_x.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_missing_reference_fails_in_ci(tmp_path):
    proc = _run(tmp_path, "true", "reference or optional or gpu")
    assert proc.returncode == 1, proc.stdout
    assert "neuroprobe_no_such_reference_lib" in proc.stdout
    assert "reference libraries missing in CI" in proc.stdout


def test_missing_reference_only_skips_outside_ci(tmp_path):
    proc = _run(tmp_path, None, "reference")
    assert proc.returncode == 0, proc.stdout
    assert "1 skipped" in proc.stdout


def test_gpu_and_documented_optional_skips_allowed_in_ci(tmp_path):
    import importlib.util

    if importlib.util.find_spec("ray") is not None:
        pytest.skip("ray is installed here")  # a plain skip, not an import failure
    proc = _run(tmp_path, "true", "optional or gpu")
    assert proc.returncode == 0, proc.stdout
    assert "2 skipped" in proc.stdout
