"""erofs-utils 1.9 (built by bench/build-mkfs-erofs.sh): fsck for block sizes other than 4096.

Debian 12's erofs-utils 1.5 only handles 4096-byte blocks. `.ci/run` builds 1.9 first;
where it is missing, the checks that need it are skipped with that reason.
"""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CANDIDATES = [
    *filter(None, os.environ.get("EROFS_UTILS_BIN", "").split(os.pathsep)),
    "/var/cache/s3erofs/erofs-utils-64k/bin",  # .ci/run: built with MAX_BLOCK_SIZE=65536
    str(Path(os.environ.get("S3EROFS_BENCH_CACHE", REPO / "bench" / ".cache"))
        / "erofs-utils" / "bin"),
]
BIN = next((Path(d) for d in CANDIDATES if (Path(d) / "fsck.erofs").exists()),
           Path(CANDIDATES[-1]))


def tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"erofs-utils 1.9 not built ({path} missing; run bench/build-mkfs-erofs.sh)")
    return path


def fsck(img, block_size: int = 4096) -> str:
    """fsck.erofs 1.5 for 4 KiB blocks, 1.9 for the other sizes it supports."""
    exe = "fsck.erofs" if block_size == 4096 else str(tool("fsck.erofs"))
    result = subprocess.run([exe, str(img)], capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{exe} {img} exited {result.returncode}:\n{output}"
    return output
