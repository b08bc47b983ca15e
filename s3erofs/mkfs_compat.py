"""``s3erofs mkfs``: mkfs.erofs's S3 command line, built by s3erofs.

Accepts ``mkfs.erofs [options] --s3=ENDPOINT[,passwd_file=F][,urlstyle=vhost|path]
[,sig=2|4][,region=R] IMAGE SOURCE`` with the options that matter for a meta-only
S3 build, and mkfs.erofs's defaults (virtual-host style, SigV2, root and implicit
directories 0777, the invoking user as owner, ``-T`` setting every mtime unless
``--mkfs-time``). What mkfs.erofs gets wrong (unencoded query values, local-time
mtimes, silent key merging, no retries) s3erofs does right here too.
"""

import argparse
import logging
import os
import urllib.parse
from dataclasses import dataclass

from .errors import UsageError

log = logging.getLogger(__name__)

IMPLICIT_DIR_MODE = 0o777  # mkfs.erofs: the root, and unmarked directories inherit it


@dataclass
class S3Spec:
    """The parsed ``--s3=`` value."""

    endpoint: str
    passwd_file: str | None = None
    url_style: str = "virtual"
    sig: int = 2
    region: str | None = None

    @classmethod
    def parse(cls, text: str) -> "S3Spec":
        endpoint, *options = text.split(",")
        if not endpoint:
            raise UsageError(f"--s3={text!r} names no endpoint")
        if "://" not in endpoint:
            endpoint = "https://" + endpoint
        spec = cls(endpoint)
        for option in options:
            name, sep, value = option.partition("=")
            if not sep:
                raise UsageError(f"--s3 option {option!r} needs a value (NAME=VALUE)")
            spec._set(name, value)
        if spec.sig == 4 and not spec.region:
            raise UsageError("--s3=...,sig=4 needs region=REGION (as in mkfs.erofs)")
        return spec

    def _set(self, name: str, value: str) -> None:
        if name == "passwd_file":
            self.passwd_file = value
        elif name == "urlstyle":
            styles = {"vhost": "virtual", "path": "path"}
            if value not in styles:
                raise UsageError(f"--s3 urlstyle must be vhost or path, not {value!r}")
            self.url_style = styles[value]
        elif name == "sig":
            if value not in ("2", "4"):
                raise UsageError(f"--s3 sig must be 2 or 4, not {value!r}")
            self.sig = int(value)
        elif name == "region":
            self.region = value
        else:
            raise UsageError(f"unknown --s3 option {name!r} (passwd_file, urlstyle, sig, region)")


def split_source(source: str, spec: S3Spec) -> tuple[str, str, str]:
    """(endpoint, bucket, prefix) from mkfs.erofs's SOURCE forms.

    ``bucket`` and ``bucket/prefix`` name the bucket; ``/prefix`` means the endpoint
    names it: the last path segment in path style, the first host label in vhost style.
    """
    if not source.startswith("/"):
        bucket, _, prefix = source.partition("/")
        if not bucket:
            raise UsageError(f"SOURCE {source!r} names no bucket")
        return spec.endpoint, bucket, prefix

    parts = urllib.parse.urlsplit(spec.endpoint)
    path = parts.path.rstrip("/")
    if spec.url_style == "path":
        base, _, bucket = path.rpartition("/")
        endpoint = urllib.parse.urlunsplit((parts.scheme, parts.netloc, base, "", ""))
    else:
        bucket, _, host = parts.netloc.partition(".")
        endpoint = urllib.parse.urlunsplit((parts.scheme, host, path, "", ""))
    if not bucket:
        raise UsageError(f"SOURCE {source!r} needs an endpoint that names the bucket "
                         f"({spec.endpoint!r} does not)")
    return endpoint, bucket, source.lstrip("/")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "mkfs", help="mkfs.erofs-compatible S3 build (--s3=ENDPOINT,... IMAGE SOURCE)",
        description="Build like `mkfs.erofs --s3=... --clean=0 IMAGE SOURCE`, with "
        "mkfs.erofs's options and defaults, and s3erofs's fixes (encoded queries, UTC "
        "mtimes with nanoseconds, reported key clashes, retries).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="SOURCE: BUCKET, BUCKET/PREFIX (the prefix stays in image paths), or "
        "/PREFIX when ENDPOINT names the bucket.\nCredentials: passwd_file, else "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else anonymous.")
    p.add_argument("image", help="image file to write")
    p.add_argument("source", help="BUCKET, BUCKET/PREFIX or /PREFIX")
    p.add_argument("--s3", required=True, metavar="ENDPOINT[,OPTIONS]",
                   help="ENDPOINT[,passwd_file=F][,urlstyle=vhost|path][,sig=2|4][,region=R]")
    p.add_argument("--clean", metavar="0",
                   help="must be 0: s3erofs writes meta-only images (no object data)")
    p.add_argument("-b", dest="block_size", type=int, default=4096, help="block size")
    p.add_argument("-T", dest="timestamp", type=int, help="build time; also every "
                   "inode's mtime unless --mkfs-time")
    p.add_argument("--mkfs-time", action="store_true",
                   help="-T sets only the superblock time")
    p.add_argument("-U", dest="uuid", help="UUID, 'clear' or 'random'")
    p.add_argument("-L", dest="label", default="", help="volume label")
    p.add_argument("--all-root", action="store_true", help="owner 0:0")
    p.add_argument("--force-uid", type=int, help="owner of every inode")
    p.add_argument("--force-gid", type=int, help="group of every inode")
    p.add_argument("--quiet", action="store_true", help="print errors only")
    p.add_argument("-d", dest="debug_level", type=int, default=2, help="message level 0-9")
    p.set_defaults(handler=run, quiet=False, debug=False)


def run(args) -> int:
    from . import build
    from .cli import parse_uuid
    from .s3client import ClientConfig
    from .tree import TreeOptions
    from .write import ImageOptions

    if args.clean != "0":
        raise UsageError("s3erofs writes meta-only images only: pass --clean=0 "
                         "(importing object data is not supported)")
    spec = S3Spec.parse(args.s3)
    endpoint, bucket, prefix = split_source(args.source, spec)
    creds = _credentials(spec)

    build_time = args.timestamp
    if build_time is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        build_time = int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        uuid = parse_uuid(args.uuid) if args.uuid else None
    except argparse.ArgumentTypeError as exc:
        raise UsageError(str(exc)) from None
    image_options = ImageOptions(block_size=args.block_size, build_time=build_time,
                                 uuid=uuid, volume_name=args.label).resolved()
    uid, gid = _owner(args)
    tree_options = TreeOptions(uid=uid, gid=gid, build_time=image_options.build_time,
                               implicit_dir_mode=IMPLICIT_DIR_MODE, implicit_from_parent=True)
    if args.timestamp is not None and not args.mkfs_time:
        tree_options.all_mtime = args.timestamp

    config = ClientConfig(endpoint_url=endpoint, region=spec.region or "us-east-1",
                          url_style=spec.url_style, signature=spec.sig if creds else None,
                          credentials=creds)
    summary = build.build_from_bucket(
        build.BucketSource(bucket, prefix), args.image, config=config,
        tree_options=tree_options, image_options=image_options, list_version=1,
        keep_prefix=True)
    if not args.quiet:
        print(f"{args.image}: {summary.line()}")
    return 0


def _credentials(spec: S3Spec):
    """mkfs.erofs's order: passwd file, then the environment, else anonymous."""
    from . import credentials, sign

    if spec.passwd_file:
        return credentials.read_passwd_file(spec.passwd_file)
    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if access_key and secret_key:
        return sign.Credentials(access_key, secret_key, os.environ.get("AWS_SESSION_TOKEN"))
    log.info("no passwd_file and no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: "
             "sending anonymous requests")
    return None


def _owner(args) -> tuple[int, int]:
    """mkfs.erofs's owner rules: the invoking user unless --all-root or --force-*."""
    uid, gid = (0, 0) if args.all_root else (os.getuid(), os.getgid())
    if args.force_uid is not None:
        uid = args.force_uid
    if args.force_gid is not None:
        gid = args.force_gid
    return uid, gid
