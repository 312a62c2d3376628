"""The Python examples of the README and the documentation pages run as written.

Each ```python block of docs/*.md runs in a fresh interpreter, in a temporary directory;
the README's first example trains, and resumes when run again. The site itself is built,
with every warning an error, by ``make docs``, which ``make test`` runs.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[tuple[str, str]]:
    found = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for k, code in enumerate(BLOCK.findall(page.read_text())):
            found.append((f"{page.relative_to(ROOT)}[{k}]", code))
    return found


BLOCKS = python_blocks()


def run_block(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_the_pages_have_examples():
    names = {name.split("[")[0] for name, _ in BLOCKS}
    assert {"docs/optimizers.md", "docs/schedules.md"} <= names


@pytest.mark.parametrize("name,code", BLOCKS, ids=[name for name, _ in BLOCKS])
def test_example_runs(name, code, tmp_path):
    proc = run_block(code, tmp_path)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stderr[-3000:]}"


def test_readme_first_example_trains_and_resumes(tmp_path):
    readme = (ROOT / "README.md").read_text()
    first = readme[readme.index("## A first example") :]
    code = BLOCK.search(first).group(1)
    outputs = []
    for _ in range(2):  # the second run resumes from the first one's checkpoint
        proc = run_block(code, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        status, val_acc, test_acc = proc.stdout.split()
        outputs.append(proc.stdout)
        assert status == "completed"
        assert float(val_acc) > 0.5 and float(test_acc) > 0.5  # chance is 0.1
    assert (tmp_path / "runs" / "first" / "summary.json").is_file()
    assert outputs[0] == outputs[1]


def test_readme_links_point_to_files():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if "://" not in t]
    assert "docs/getting-started.md" in local
    missing = [t for t in local if not (ROOT / t).is_file()]
    assert not missing, f"README links to missing files: {missing}"
