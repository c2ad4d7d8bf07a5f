"""The scripts of examples/ run as documented."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# one BLAS/OpenMP thread per subprocess: the arrays are small, and the test machine is shared
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# the real data lies beside the checkout (../shared/data, as on the development and CI machines);
# NEUROPROBE_KRIEGESKORTE92 points elsewhere
KRIEGESKORTE = Path(
    os.environ.get("NEUROPROBE_KRIEGESKORTE92", ROOT.parent / "shared" / "data" / "kriegeskorte92")
)


@pytest.mark.slow
@pytest.mark.skipif(not (KRIEGESKORTE / "rdms.npz").is_file(),
                    reason="Kriegeskorte 92-image data not on this machine")
def test_kriegeskorte92_rsa_example(tmp_path):
    from neuroprobe.rsa import noise_ceiling

    out = tmp_path / "k92"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "kriegeskorte92_rsa.py"), str(KRIEGESKORTE),
         "--weights", "none", "--layers", "conv1", "fc3", "--n-permutations", "50",
         "--out", str(out)],
        capture_output=True, text=True, timeout=900, env=ENV,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out / "rsa_by_layer.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["layer"] for r in rows] == ["conv1", "fc3"]
    for r in rows:
        assert -1 <= float(r["spearman_subject_mean"]) <= 1
        assert 1 / 51 <= float(r["p"]) <= float(r["p_fwe"]) <= 1
    nc = noise_ceiling(np.load(KRIEGESKORTE / "rdms.npz")["hIT_subject_session"], "spearman")
    assert f"lower {nc.lower:.3f}, upper {nc.upper:.3f}" in proc.stdout
    assert (out / "rsa_by_layer.png").read_bytes()[:4] == b"\x89PNG"


def test_kriegeskorte92_rsa_example_names_a_bad_folder(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "kriegeskorte92_rsa.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "stimuli.csv not found" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_quickstart_example_picks_a_layer(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("best layer: ")
    layer, accuracy = line.split()[2], float(line.split()[-1])
    assert layer in {"conv1", "conv2", "conv3", "conv4", "fc1"} and 0.25 < accuracy <= 1


def test_readme_quickstart_is_the_tested_example():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Quickstart (Python)"):]
    snippet = section[section.index("```python") + len("```python"):]
    snippet = snippet[: snippet.index("```")]
    script = (ROOT / "examples" / "quickstart.py").read_text()
    script = script[script.index('"""', 3) + 3:]  # after the docstring

    def code(text):
        return [line for line in text.strip().splitlines() if line.strip()]

    assert code(snippet) == code(script)


@pytest.mark.slow
def test_meg_hierarchy_example_recovers_the_planted_order(tmp_path):
    pytest.importorskip("mne")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "meg_hierarchy.py"), "--out", str(tmp_path),
         "--subjects", "6", "--n-permutations", "200"],
        capture_output=True, text=True, timeout=300, env=ENV,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "planted order recovered: True"
    layer_lines = [line for line in lines[:-1] if "planted " in line]
    assert len(layer_lines) == 8                                 # RSA and encoding, 4 layers
    peaks = [float(line.split("peak ")[1].split(" s")[0]) for line in layer_lines]
    planted = [float(line.split("planted ")[1].split(" s")[0]) for line in layer_lines]
    np.testing.assert_allclose(peaks, planted, atol=0.011)       # within two samples (200 Hz)
    ceiling = next(line for line in lines if line.startswith("noise ceiling at the peak"))
    lower, upper = (float(v) for v in ceiling.split("[")[1].split("]")[0].split(","))
    mean_rsa = float(ceiling.rsplit(" ", 1)[1])
    assert 0 < lower <= upper <= 1 and mean_rsa <= upper         # the curves under the ceiling
    for name in ("rsa_time_courses.png", "peak_latencies.png", "encoding_time_courses.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_naturalistic_encoding_example_recovers_the_planted_layers(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "naturalistic_encoding.py")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert "solver kernel" in lines[0]
    for line in lines[-2:]:  # split R^2 and band weights pick the planted layer
        assert line.startswith("voxels whose largest")
        assert int(line.rsplit(" ", 1)[-1].rstrip("%")) >= 80, line
