"""Command line: ``s3erofs build``, ``mkfs``, ``ls``, ``stat`` and ``verify``."""

import argparse
import logging
import sys
import uuid as uuidlib

from . import __version__
from .errors import S3erofsError, UsageError

log = logging.getLogger("s3erofs")

EXIT_CODES = """\
exit codes:
  0  success
  1  verify: the image and the bucket differ
  2  usage error (bad option, bad URL, unreadable credentials)
  3  S3 or network error after retries, or a malformed listing
  4  --strict: a key could not be represented exactly (no image is written)
  5  image error: a format limit was exceeded, or an image is corrupt
"""

BUILD_EPILOG = """\
credentials, first found wins: --no-sign-request; --access-key/--secret-key;
--passwd-file (one AK:SK line, mode 600); AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN; the profile (--profile, AWS_PROFILE, else "default") in
~/.aws/credentials and ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE).
Region: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile, else us-east-1.
Endpoint: --endpoint-url, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile, else AWS.

examples:
  s3erofs build s3://my-bucket/photos/ photos.erofs --region eu-west-1
  s3erofs build s3://data data.erofs --endpoint-url http://127.0.0.1:9000 -T 0 -U clear
  s3erofs build ./rootfs rootfs.erofs

""" + EXIT_CODES


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def parse_uuid(text: str) -> uuidlib.UUID | None:
    """``-U``: a UUID, ``clear`` (all zeros) or ``random``."""
    if text == "clear":
        return uuidlib.UUID(int=0)
    if text == "random":
        return None
    try:
        return uuidlib.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a UUID, 'clear' or 'random'") from None


def add_image_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("image")
    g.add_argument("-b", "--block-size", type=positive_int, default=4096, metavar="BYTES",
                   help="block size, a power of two from 512 to 65536 (default 4096; Linux "
                   "mounts block sizes up to its page size)")
    g.add_argument("-T", "--timestamp", type=int, metavar="SECONDS",
                   help="build time in the superblock, also the mtime of the root and of "
                   "directories without a marker object (default: now); object mtimes "
                   "always stay the objects' own")
    g.add_argument("-U", "--uuid", type=parse_uuid, metavar="UUID",
                   help="filesystem UUID, 'clear' or 'random' (default random); with -T "
                   "this makes builds reproducible")
    g.add_argument("-L", "--label", default="", metavar="LABEL",
                   help="volume label, at most 15 bytes")
    g.add_argument("--uid", type=positive_int,
                   help="owner of every inode (default 0; a local directory keeps its own)")
    g.add_argument("--gid", type=positive_int,
                   help="group of every inode (default 0; a local directory keeps its own)")


def add_s3_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("S3 connection")
    g.add_argument("--endpoint-url", metavar="URL",
                   help="S3-compatible endpoint, e.g. http://127.0.0.1:9000 (default: AWS; "
                   "also AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL)")
    g.add_argument("--region", help="signing region (default us-east-1, or AWS_REGION); "
                   "'auto' follows the region the server names")
    g.add_argument("--url-style", choices=("auto", "path", "virtual"), default="auto",
                   help="path: http://host/bucket; virtual: http://bucket.host; auto "
                   "(default): path for IP addresses, localhost and names that are not "
                   "DNS-compatible or contain dots over https, virtual otherwise")
    g.add_argument("--sig", type=int, choices=(2, 4), default=4,
                   help="signature version (default 4; 2 is legacy, for old stores)")
    g.add_argument("--no-sign-request", action="store_true",
                   help="send anonymous requests (public buckets)")
    g.add_argument("--access-key", metavar="AK", help="access key id")
    g.add_argument("--secret-key", metavar="SK",
                   help="secret access key (prefer the environment or a profile: "
                   "command lines are visible to other users)")
    g.add_argument("--session-token", metavar="TOKEN", help="session token of temporary "
                   "credentials")
    g.add_argument("--passwd-file", metavar="FILE",
                   help="file with one AK:SK line, readable by its owner only")
    g.add_argument("--profile", help="profile in ~/.aws/credentials and ~/.aws/config")
    g.add_argument("--list-version", type=int, choices=(1, 2), default=2,
                   help="ListObjectsV2 (default) or ListObjects V1 for stores that "
                   "handle it better")
    g.add_argument("--max-keys", type=positive_int, default=1000,
                   help="keys per listing page, 1 to 1000 (default 1000)")
    g.add_argument("--max-attempts", type=positive_int, default=5,
                   help="attempts per request, retrying 5xx, SlowDown, resets and "
                   "timeouts with backoff (default 5)")
    g.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="connect timeout (default 10)")
    g.add_argument("--stall-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="give up on a response that sends nothing for this long "
                   "(default 30); the request is retried")
    g.add_argument("--request-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="limit for one whole request (default 300)")


def add_output_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="print errors only (no warnings, progress or summary)")
    g.add_argument("-v", "--verbose", action="store_true", help="one line per phase")
    g.add_argument("--debug", action="store_true",
                   help="debug log (requests, signing steps; secrets are never shown)")
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only when stderr is a terminal)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3erofs",
        description="Turn an S3 bucket (or a local directory) into an EROFS image.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"s3erofs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    build = sub.add_parser(
        "build", help="build an image from s3://BUCKET[/PREFIX] or a local directory",
        description="List s3://BUCKET[/PREFIX] and write a meta-only EROFS image: every "
        "object becomes a file with its name, size and mtime, whose reads return zeros. "
        "A local directory is copied with its data (or sizes only with --meta-only). "
        "Key rules (markers, clashes, odd names) are in SEMANTICS.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BUILD_EPILOG)
    build.add_argument("source", help="s3://BUCKET[/PREFIX] or a directory")
    build.add_argument("image", help="image file to write (replaced only on success)")
    build.add_argument("--keep-prefix", action="store_true",
                       help="keep the prefix in image paths (as mkfs.erofs does) instead "
                       "of making the prefix's contents the root")
    build.add_argument("--strict", action="store_true",
                       help="fail (exit 4, no image) if any key is skipped or changed")
    build.add_argument("--report", metavar="FILE",
                       help="write skipped or changed keys as JSON lines (key, reason, action)")
    build.add_argument("--meta-only", action="store_true",
                       help="local directories: store sizes only, no file data")
    add_image_options(build)
    add_s3_options(build)
    add_output_options(build)

    from . import inspect_cli, mkfs_compat
    mkfs_compat.add_parser(sub)
    inspect_cli.add_parsers(sub, add_s3_options, add_output_options)
    return parser


def setup_logging(args) -> None:
    level = logging.WARNING
    if getattr(args, "quiet", False):
        level = logging.ERROR
    elif getattr(args, "debug", False):
        level = logging.DEBUG
    elif getattr(args, "verbose", False):
        level = logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("s3erofs: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def client_config(args):
    """ClientConfig from the S3 options, credentials and AWS conventions."""
    from . import credentials
    from .s3client import ClientConfig

    creds = credentials.resolve_credentials(
        access_key=args.access_key, secret_key=args.secret_key,
        session_token=args.session_token, passwd_file=args.passwd_file,
        profile=args.profile, anonymous=args.no_sign_request)
    if args.max_keys < 1 or args.max_keys > 1000:
        raise UsageError(f"--max-keys must be from 1 to 1000, not {args.max_keys}")
    if args.max_attempts < 1:
        raise UsageError("--max-attempts must be at least 1")
    return ClientConfig(
        endpoint_url=credentials.resolve_endpoint(args.endpoint_url, profile=args.profile),
        region=credentials.resolve_region(args.region, profile=args.profile),
        url_style=args.url_style,
        signature=None if creds is None else args.sig,
        credentials=creds,
        connect_timeout=args.connect_timeout,
        low_speed_time=args.stall_timeout,
        request_timeout=args.request_timeout,
        max_attempts=args.max_attempts,
        debug_wire=args.debug,
    )


class Progress:
    """Keys and pages while listing, on a terminal only."""

    def __init__(self, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(unit=" keys", desc="listing", file=sys.stderr, leave=False,
                            dynamic_ncols=True)

    def __call__(self, pages: int, keys: int) -> None:
        if self.bar is not None:
            self.bar.update(keys - self.bar.n)
            self.bar.set_postfix(pages=pages, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def image_and_tree_options(args):
    from .tree import TreeOptions
    from .write import ImageOptions

    image_options = ImageOptions(block_size=args.block_size, build_time=args.timestamp,
                                 uuid=args.uuid, volume_name=args.label).resolved()
    tree_options = TreeOptions(uid=args.uid or 0, gid=args.gid or 0,
                               build_time=image_options.build_time)
    return image_options, tree_options


def cmd_build(args) -> int:
    from . import build

    image_options, tree_options = image_and_tree_options(args)
    if not args.source.startswith("s3://"):
        from . import localsrc
        summary = localsrc.build_from_directory(
            args.source, args.image, meta_only=args.meta_only, image_options=image_options,
            uid=args.uid, gid=args.gid)
        if not args.quiet:
            print(f"{args.image}: {summary.line()}")
        return 0

    source = build.BucketSource.parse(args.source)
    progress = Progress(sys.stderr.isatty() and not (args.quiet or args.no_progress))
    try:
        summary = build.build_from_bucket(
            source, args.image, config=client_config(args), tree_options=tree_options,
            image_options=image_options, list_version=args.list_version,
            max_keys=args.max_keys, keep_prefix=args.keep_prefix, strict=args.strict,
            report_path=args.report, progress=progress)
    finally:
        progress.close()
    if not args.quiet:
        print(f"{args.image}: {summary.line()}")
    return 0


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    setup_logging(args)
    handlers = {"build": cmd_build}
    try:
        if args.command in handlers:
            return handlers[args.command](args)
        return args.handler(args)
    except S3erofsError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except OSError as exc:
        log.error("%s", exc)
        return 5 if getattr(exc, "filename", None) else 3
    except Exception as exc:  # the last line of defence: a message, never a traceback
        log.error("internal error: %s: %s (run with --debug for details)",
                  type(exc).__name__, exc)
        if getattr(args, "debug", False):
            log.debug("traceback", exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
