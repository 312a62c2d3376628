"""A gallery built by the real command, killed once on the way and run again.

``killed_and_resumed`` runs ``optimlab gallery --only cyclical,whitening`` in a child
process, sends it SIGKILL as soon as the first entry's result is on disk, runs the same
command again to the end, then a third time. The two cheapest entries keep it short.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

# Before the import, so the helpers' asserts report their operands as the tests' do.
pytest.register_assert_rewrite("gallery_helpers")

from gallery_helpers import ONLY, child_env, files_of, gallery_command, stamp  # noqa: E402


@pytest.fixture(scope="session")
def killed_and_resumed(tmp_path_factory):
    out = tmp_path_factory.mktemp("gallery")
    command = gallery_command(out, "--only", ",".join(ONLY))
    first = out / ONLY[0] / "result.json"
    child = subprocess.Popen(command, env=child_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not first.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    _, killed_err = child.communicate(timeout=60)
    assert first.exists(), f"the first entry never finished:\n{killed_err[-3000:]}"
    second_done_when_killed = (out / ONLY[1] / "result.json").exists()
    before_resume = {p.name: stamp(p) for p in files_of(out / ONLY[0])}
    resumed = subprocess.run(command, env=child_env(), capture_output=True, text=True)
    after_resume = {name: {p.name: stamp(p) for p in files_of(out / name)} for name in ONLY}
    third = subprocess.run(command, env=child_env(), capture_output=True, text=True)
    after_third = {name: {p.name: stamp(p) for p in files_of(out / name)} for name in ONLY}
    return {
        "out": out,
        "killed_returncode": child.returncode,
        "second_done_when_killed": second_done_when_killed,
        "before_resume": before_resume,
        "resumed": resumed,
        "after_resume": after_resume,
        "third": third,
        "after_third": after_third,
    }
