"""`hematovision classify DIR | head` (issue #21): the reader leaving early is not an error and prints no traceback."""

import subprocess
import sys

from tests import fakes


def test_classify_into_a_closed_pipe_is_quiet(tmp_path, fake_model_dir):
    for index in range(60):
        (tmp_path / f"{index:02}.jpg").write_bytes(fakes.synthetic_cell(seed=index))
    command = [sys.executable, "-m", "hematovision.cli", "classify", str(tmp_path), "--model-dir", str(fake_model_dir)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        first = process.stdout.readline()
        process.stdout.close()  # as `head -1` does after its line
        stderr = process.stderr.read().decode()
        code = process.wait(timeout=120)
    assert first.decode().startswith(str(tmp_path))
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert code == 0
