""".ci/run reads README's two commands from README itself: what it runs is what README says."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_command(n, readme=None):
    script = (ROOT / ".ci" / "run").read_text()
    func = re.search(r"^readme_command\(\) \{.*?^\}", script, re.S | re.M).group(0)
    cwd = ROOT if readme is None else readme.parent
    out = subprocess.run(["bash", "-c", f"{func}\nreadme_command {n}"], cwd=cwd,
                         capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_runs_the_readme_commands():
    section = (ROOT / "README.md").read_text().split("## Two commands on a fresh machine")[1]
    section = section.split("\n## ")[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert blocks == [
        'python3 -m pip install -e ".[all]" && neuroprobe demo --out neuroprobe_demo',
        'python3 -m pip install -e ".[all,test]" && python3 -m pytest -q',
    ]
    assert [_readme_command(1), _readme_command(2)] == blocks
    assert _readme_command(3) == ""


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_reads_only_the_two_commands_section(tmp_path):
    (tmp_path / "README.md").write_text(
        "# x\n\n```bash\nnot this\n```\n\n## Two commands on a fresh machine\n\ntext\n\n"
        "```bash\nfirst\n```\n\n```bash\nsecond\n```\n\n## Next\n\n```bash\nnor this\n```\n")
    assert [_readme_command(i, tmp_path / "README.md") for i in (1, 2, 3)] == [
        "first", "second", ""]
