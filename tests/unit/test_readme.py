"""The README's library example runs as it is and prints what its comments say."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_library_example_runs(tmp_path):
    text = README.read_text()
    section = text[text.index("## Python library"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)

    env = dict(os.environ, PYTHONPATH=str(README.parent))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "6 inodes, 4096 bytes",
        "[b'hostname', b'hostname.bak', b'localtime']",
        "b'box\\n'",
        "21474836480",
    ]
    assert (tmp_path / "example.erofs").stat().st_size == 4096
