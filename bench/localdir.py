#!/usr/bin/env python3
"""``s3erofs build DIR`` against ``mkfs.erofs DIR`` on one generated tree.

The tree: FILES regular files (sizes 0 to 64 KiB, a few of 1 MiB, seeded random bytes) in
about FILES / 100 directories up to 4 deep, plus symlinks and hard links. Each tool builds
it RUNS times, alternating; the median wall time, peak RSS and image size are reported, and
both images are checked with fsck.erofs. Results go to bench/results/localdir.{md,json}.

    python bench/localdir.py [--files 100000] [--runs 3] [--keep DIR]
"""

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
CACHE_BIN = HERE / ".cache" / "erofs-utils" / "bin"


def make_tree(root: Path, files: int, seed: int = 0) -> int:
    """Write the tree; returns the bytes of file data written."""
    rng = random.Random(seed)
    dirs = [root]
    for i in range(max(1, files // 100)):
        parent = rng.choice(dirs[-50:] if len(dirs) > 50 else dirs)
        if len(parent.relative_to(root).parts) >= 4:
            parent = root
        d = parent / f"d{i:05d}"
        d.mkdir()
        dirs.append(d)
    total = 0
    blob = rng.randbytes(1 << 20)
    for i in range(files):
        size = (1 << 20) if i % 1000 == 0 else int(rng.paretovariate(1.2) * 200) % 65536
        path = rng.choice(dirs) / f"file-{i:06d}.dat"
        start = rng.randrange(0, (1 << 20) - size + 1)
        path.write_bytes(blob[start:start + size])
        total += size
        if i % 500 == 1:
            os.symlink(path.name, path.with_name(path.name + ".lnk"))
        if i % 700 == 2:
            os.link(path, path.with_name(path.name + ".hard"))
    return total


def timed(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one child process."""
    started = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    err = child.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} failed: {err[-2000:]}")
    return wall, usage.ru_maxrss


def fsck(img: Path) -> str:
    for exe in ("fsck.erofs", str(CACHE_BIN / "fsck.erofs")):
        if shutil.which(exe) or Path(exe).exists():
            result = subprocess.run([exe, str(img)], capture_output=True, text=True)
            if result.returncode != 0:
                return f"FAILED ({exe}: {result.stderr.strip()[-200:]})"
    return "clean"


def tool_version(exe: str) -> str:
    """``mkfs.erofs (erofs-utils) 1.9.4``; 1.5 has no --version and says ``mkfs.erofs 1.5``."""
    for flag in ("--version", "--help"):
        result = subprocess.run([exe, flag], capture_output=True, text=True)
        for line in (result.stdout + result.stderr).splitlines():
            if line.startswith("mkfs.erofs") and any(c.isdigit() for c in line):
                return line.strip()
    return exe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the tree here and keep it")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="s3erofs-localdir-"))
    src = args.keep or work / "src"
    if not src.exists():
        src.mkdir(parents=True)
        data = make_tree(src, args.files)
        print(f"tree: {args.files} files, {data} bytes of data in {src}", flush=True)

    mkfs = str(CACHE_BIN / "mkfs.erofs") if (CACHE_BIN / "mkfs.erofs").exists() else "mkfs.erofs"
    tools = {
        "s3erofs": lambda img: [sys.executable, "-m", "s3erofs", "build", str(src), str(img),
                                "-T", "0", "-U", "clear", "-q"],
        "mkfs.erofs": lambda img: [mkfs, "--quiet", "-b", "4096", "-T0", "--all-root",
                                   "-U", "00000000-0000-0000-0000-000000000000",
                                   str(img), str(src)],
    }
    runs = {name: [] for name in tools}
    for i in range(args.runs):
        for name, argv in tools.items():
            img = work / f"{name}.img"
            wall, rss = timed(argv(img))
            runs[name].append({"wall": wall, "rss_kib": rss, "image_bytes": img.stat().st_size})
            print(f"run {i + 1} {name}: {wall:.2f} s, {rss // 1024} MiB, "
                  f"{img.stat().st_size} bytes", flush=True)
    checks = {name: fsck(work / f"{name}.img") for name in tools}

    summary = {name: {"median_wall": statistics.median(r["wall"] for r in rs),
                      "median_rss_kib": statistics.median(r["rss_kib"] for r in rs),
                      "image_bytes": rs[-1]["image_bytes"], "fsck": checks[name]}
               for name, rs in runs.items()}
    report = {
        "files": args.files, "runs": runs, "summary": summary,
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "kernel": platform.release(),
                    "python": platform.python_version(), "mkfs.erofs": tool_version(mkfs),
                    "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                  time.gmtime())},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "localdir.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "localdir.md").write_text(markdown(report))
    print(markdown(report))
    shutil.rmtree(work, ignore_errors=True)


def markdown(report: dict) -> str:
    s, m = report["summary"]["s3erofs"], report["summary"]["mkfs.erofs"]
    lines = [
        f"# s3erofs build DIR vs mkfs.erofs DIR, {report['files']} files",
        "",
        f"{report['machine']['date']}; {report['machine']['cpu']}, "
        f"{report['machine']['cores']} cores; kernel {report['machine']['kernel']}; "
        f"{report['machine']['mkfs.erofs']}; load average at the end "
        f"{report['machine']['load'][0]:.1f}",
        "",
        "| tool | median wall (s) | median peak RSS (MiB) | image bytes | fsck.erofs |",
        "|---|---|---|---|---|",
    ]
    for name, v in report["summary"].items():
        lines.append(f"| {name} | {v['median_wall']:.2f} | {v['median_rss_kib'] / 1024:.0f} | "
                     f"{v['image_bytes']} | {v['fsck']} |")
    lines += ["", f"ratio s3erofs / mkfs.erofs: wall {s['median_wall'] / m['median_wall']:.2f}, "
              f"RSS {s['median_rss_kib'] / m['median_rss_kib']:.2f}, "
              f"image {s['image_bytes'] / m['image_bytes']:.3f}", "",
              "Command: `python bench/localdir.py --files "
              f"{report['files']} --runs {len(report['runs']['s3erofs'])}`", ""]
    return "\n".join(lines)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
