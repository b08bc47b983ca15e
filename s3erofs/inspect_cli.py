"""``s3erofs ls``, ``stat`` and ``verify``: look inside an image without mounting it.

Output conventions: names are printed with ``tree.escape_key`` (non-printable characters
escaped), entries in on-disk order (bytewise sorted), times in UTC with nanoseconds.
``ls -R`` prints like ``ls -R``: a ``PATH:`` header before each directory's entries and a
blank line between directories. ``ls -l`` prints no ``total`` line.
"""

import argparse
import contextlib
import datetime
import json
import logging
import os
import stat as statmod
import sys

from . import reader
from .erofs_fs import EROFS_FT_DIR, EROFS_FT_UNKNOWN
from .errors import UsageError
from .tree import escape_key

log = logging.getLogger(__name__)

TYPE_NAMES = {
    statmod.S_IFREG: "regular file", statmod.S_IFDIR: "directory",
    statmod.S_IFLNK: "symbolic link", statmod.S_IFCHR: "character special file",
    statmod.S_IFBLK: "block special file", statmod.S_IFIFO: "fifo",
    statmod.S_IFSOCK: "socket",
}

# erofs_fs.h EROFS_INODE_* data layouts
LAYOUT_NAMES = {0: "flat-plain", 1: "compressed-full", 2: "flat-inline",
                3: "compressed-compact", 4: "chunk-based"}

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

VERIFY_EPILOG = """\
output, one line per difference, then a summary:
  missing: KEY        a key not in the image (a marker key ends in '/')
  extra: PATH         an image path that no key makes
  changed: KEY size A -> B, mtime A -> B
                      the image's value first, then the bucket's
  N keys checked: X missing, Y extra, Z changed
                      the summary (not with -q); Z counts keys
"""


def add_parsers(sub, add_s3_options, add_output_options) -> None:
    """Register ``ls``, ``stat`` and ``verify`` on the argparse subparsers ``sub``."""
    ls = sub.add_parser("ls", help="list a directory inside an image",
                        description="List PATH (default /) inside an EROFS image, like ls.")
    ls.add_argument("image", help="EROFS image file")
    ls.add_argument("path", nargs="?", default="/", help="path in the image, from its root")
    ls.add_argument("-l", "--long", action="store_true",
                    help="mode, links, uid, gid, size, mtime (UTC, ns), name, symlink target")
    ls.add_argument("-R", "--recursive", action="store_true",
                    help="list subdirectories too, each after a 'PATH:' header")
    add_output_options(ls)
    ls.set_defaults(handler=cmd_ls)

    st = sub.add_parser("stat", help="show one inode of an image",
                        description="Show every inode field of PATH inside an EROFS image.")
    st.add_argument("image", help="EROFS image file")
    st.add_argument("path", help="path in the image, from its root")
    st.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    add_output_options(st)
    st.set_defaults(handler=cmd_stat)

    verify = sub.add_parser(
        "verify", help="compare an image with its bucket",
        description="List s3://BUCKET[/PREFIX] again and compare it with the image: keys "
        "missing from the image, image paths with no key (extra), and objects whose size "
        "or mtime changed. Exit 0 when they match, 1 when they differ.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=VERIFY_EPILOG)
    verify.add_argument("image", help="EROFS image file built from the bucket")
    verify.add_argument("source", help="s3://BUCKET[/PREFIX] the image was built from")
    verify.add_argument("--keep-prefix", action="store_true",
                        help="the image was built with --keep-prefix")
    add_s3_options(verify)
    add_output_options(verify)
    verify.set_defaults(handler=cmd_verify)


# formatting

def format_time(seconds: int, nsec: int, sep: str = " ") -> str:
    """``YYYY-MM-DD HH:MM:SS.nnnnnnnnn`` in UTC; ``@SECONDS.nnnnnnnnn`` past year 9999."""
    try:
        when = _EPOCH + datetime.timedelta(seconds=seconds)
    except OverflowError:
        return f"@{seconds}.{nsec:09d}"
    if when.year > 9999:
        return f"@{seconds}.{nsec:09d}"
    return when.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + f".{nsec:09d}"


def format_iso(seconds: int, nsec: int) -> str:
    """ISO 8601 UTC with nanoseconds, e.g. ``2023-11-14T22:13:20.000000005Z``."""
    text = format_time(seconds, nsec, sep="T")
    return text if text.startswith("@") else text + "Z"


def _show(raw: bytes) -> str:
    return escape_key(raw)


def _join(parent: bytes, name: bytes) -> bytes:
    return parent.rstrip(b"/") + b"/" + name


# ls and stat

@contextlib.contextmanager
def _inside(image_path: str, path: str):
    """Name the image path in errors about a path inside the image (exit 2)."""
    try:
        yield
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such file or directory in image {image_path}") from exc
    except NotADirectoryError as exc:
        raise UsageError(f"{path}: a path component is not a directory in image "
                         f"{image_path}") from exc


def _absolute(path: str) -> bytes:
    # paths are taken from the image's root whether or not they start with '/'
    raw = os.fsencode(path)
    return raw if raw.startswith(b"/") else b"/" + raw


def long_lines(image: reader.Image, rows: list[tuple[bytes, bytes, reader.Stat]]) -> list[str]:
    """``ls -l`` lines for ``(name, full path, Stat)`` rows, numbers right-aligned."""
    cells = [(str(st.nlink), str(st.uid), str(st.gid), str(st.size)) for _, _, st in rows]
    widths = [max((len(c[i]) for c in cells), default=0) for i in range(4)]
    lines = []
    for (name, full, st), numbers in zip(rows, cells, strict=True):
        text = " ".join([reader.format_mode(st.mode)]
                        + [n.rjust(w) for n, w in zip(numbers, widths, strict=True)]
                        + [format_time(st.mtime, st.mtime_nsec), _show(name)])
        if statmod.S_ISLNK(st.mode):
            text += " -> " + _show(image.readlink(full))
        lines.append(text)
    return lines


def _is_dir(image: reader.Image, entry: reader.DirEntry) -> bool:
    # the dirent's file type spares loading the inode; images may leave it unknown (0)
    if entry.file_type != EROFS_FT_UNKNOWN:
        return entry.file_type == EROFS_FT_DIR
    return statmod.S_ISDIR(image.inode(entry.nid).mode)


def _entry_lines(image: reader.Image, dir_path: bytes, nid: int,
                 long: bool) -> tuple[list[str], list]:
    """Lines for one directory and its subdirectories' ``(path, nid)`` (on-disk order).

    Without ``long`` no inode but the directory's own is read, so plain ``ls`` works on an
    image whose other inodes are damaged.
    """
    entries = image.scandir_nid(nid)
    subdirs = [(_join(dir_path, e.name), e.nid) for e in entries if _is_dir(image, e)]
    if not long:
        return [_show(e.name) for e in entries], subdirs

    rows = [(e.name, _join(dir_path, e.name), image.inode(e.nid)) for e in entries]
    return long_lines(image, rows), subdirs


def list_path(image: reader.Image, path: bytes, *, long: bool = False,
              recursive: bool = False) -> list[str]:
    """The lines ``s3erofs ls`` prints for ``path``."""
    st = image.stat(path)
    if not statmod.S_ISDIR(st.mode):
        return long_lines(image, [(path, path, st)]) if long else [_show(path)]

    if not recursive:
        return _entry_lines(image, path, st.nid, long)[0]

    # subdirectories by nid: a dirent typed as a directory whose inode is not one is then
    # reported as corruption (nid, offset) by the reader
    lines = []
    stack = [(path, st.nid)]
    while stack:
        dir_path, nid = stack.pop()
        entries, subdirs = _entry_lines(image, dir_path, nid, long)
        if lines:
            lines.append("")
        lines.append(_show(dir_path) + ":")
        lines.extend(entries)
        stack.extend(reversed(subdirs))
    return lines


def cmd_ls(args) -> int:
    path = _absolute(args.path)
    with reader.open(args.image) as image, _inside(args.image, args.path):
        lines = list_path(image, path, long=args.long, recursive=args.recursive)
    _print_lines(lines)
    return 0


def stat_fields(image: reader.Image, path: bytes) -> dict:
    """Every inode field of ``path`` as a JSON-ready dict (``target`` for symlinks)."""
    st = image.stat(path)
    fields = {
        "path": _show(path),
        "type": TYPE_NAMES.get(statmod.S_IFMT(st.mode), "unknown"),
        "mode": st.mode,
        "mode_octal": f"0{st.mode:o}",
        "mode_string": reader.format_mode(st.mode),
        "nid": st.nid,
        "ino": st.ino,
        "nlink": st.nlink,
        "uid": st.uid,
        "gid": st.gid,
        "size": st.size,
        "mtime": st.mtime,
        "mtime_nsec": st.mtime_nsec,
        "mtime_iso": format_iso(st.mtime, st.mtime_nsec),
        "rdev_major": os.major(st.rdev),
        "rdev_minor": os.minor(st.rdev),
        "layout": st.layout,
        "layout_name": LAYOUT_NAMES.get(st.layout, "unknown"),
        "inode_size": st.inode_size,
    }
    if statmod.S_ISLNK(st.mode):
        fields["target"] = _show(image.readlink(path))
    return fields


def stat_lines(fields: dict) -> list[str]:
    """The human form of :func:`stat_fields`, one ``name: value`` per line."""
    lines = [
        f"path: {fields['path']}",
        f"type: {fields['type']}",
        f"mode: {fields['mode_octal']} ({fields['mode_string']})",
        f"nid: {fields['nid']}",
        f"ino: {fields['ino']}",
        f"nlink: {fields['nlink']}",
        f"uid: {fields['uid']}",
        f"gid: {fields['gid']}",
        f"size: {fields['size']}",
        f"mtime: {fields['mtime_iso']}",
        f"rdev: {fields['rdev_major']},{fields['rdev_minor']}",
        f"layout: {fields['layout']} ({fields['layout_name']})",
        f"inode size: {fields['inode_size']}",
    ]
    if "target" in fields:
        lines.append(f"target: {fields['target']}")
    return lines


def cmd_stat(args) -> int:
    path = _absolute(args.path)
    with reader.open(args.image) as image, _inside(args.image, args.path):
        fields = stat_fields(image, path)
    if args.json:
        _print_lines([json.dumps(fields, ensure_ascii=False)])
    else:
        _print_lines(stat_lines(fields))
    return 0


# verify

def difference_lines(result) -> list[str]:
    """One line per difference of a ``verify.VerifyResult``.

    A changed key gets one line listing each changed field, the image's value first.
    """
    lines = [f"missing: {_show(key)}" for key in result.missing]
    lines += [f"extra: {_show(path)}" for path in result.extra]
    fields: dict[bytes, list[str]] = {}
    for key, what, image_value, bucket_value in result.changed:
        if what == "mtime":
            image_value = format_iso(*divmod(image_value, 1_000_000_000))
            bucket_value = format_iso(*divmod(bucket_value, 1_000_000_000))
        fields.setdefault(key, []).append(f"{what} {image_value} -> {bucket_value}")
    lines += [f"changed: {_show(key)} {', '.join(changes)}" for key, changes in fields.items()]
    return lines


def summary_line(result) -> str:
    return (f"{result.checked} keys checked: {len(result.missing)} missing, "
            f"{len(result.extra)} extra, {len(result.changed_keys)} changed")


def cmd_verify(args) -> int:
    from .build import BucketSource
    from .cli import Progress, client_config
    from .verify import verify_image

    source = BucketSource.parse(args.source)
    config = client_config(args)
    progress = Progress(sys.stderr.isatty() and not (args.quiet or args.no_progress))
    try:
        result = verify_image(args.image, source, config, keep_prefix=args.keep_prefix,
                              list_version=args.list_version, max_keys=args.max_keys,
                              progress=progress)
    finally:
        progress.close()

    lines = difference_lines(result)
    if not args.quiet:
        lines.append(summary_line(result))
    _print_lines(lines)
    return 0 if result.ok else 1


def _print_lines(lines: list[str]) -> None:
    try:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
    except BrokenPipeError:
        # `s3erofs ls IMG | head`: the reader left; stay quiet like ls does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None
