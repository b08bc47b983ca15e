"""Build an image from a bucket: list -> tree -> image, with a summary of each phase."""

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import s3list
from .columns import KeyColumns
from .errors import StrictKeyError, UsageError
from .s3client import ClientConfig, S3Client
from .tree import Report, Tree, TreeOptions, build_tree, escape_key
from .write import ImageOptions, ImageStats, write_image

log = logging.getLogger(__name__)


@dataclass
class BucketSource:
    """``s3://BUCKET[/PREFIX]``: the prefix always names a directory (a '/' is added)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> "BucketSource":
        if not url.startswith("s3://"):
            raise UsageError(f"{url!r} is not an s3://BUCKET[/PREFIX] URL")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise UsageError(f"{url!r} names no bucket")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(bucket, prefix)


@dataclass
class BuildSummary:
    """What a build did: counts, skipped keys, bytes and timings (seconds)."""

    keys: int = 0
    pages: int = 0
    requests: int = 0
    files: int = 0
    directories: int = 0
    image_bytes: int = 0
    reports: list[Report] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    image: ImageStats | None = None

    @property
    def skipped(self) -> Counter:
        return Counter(r.reason for r in self.reports)

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    def line(self) -> str:
        """The one summary line the command line prints."""
        text = (f"{self.files} objects, {self.directories} directories, "
                f"{self.image_bytes} image bytes, {self.seconds:.2f} s")
        if self.reports:
            counts = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
            text += f"; {len(self.reports)} keys reported ({counts})"
        return text


def list_source(source: BucketSource, config: ClientConfig, *, list_version: int = 2,
                max_keys: int = 1000, progress=None) -> tuple[KeyColumns, int, int]:
    """All keys under the source's prefix, the page count and the request count."""
    pages = 0

    def on_page(npages, nkeys):
        nonlocal pages
        pages = npages
        if progress is not None:
            progress(npages, nkeys)

    with S3Client(source.bucket, config) as client:
        columns = s3list.list_bucket(client, source.prefix, version=list_version,
                                     max_keys=max_keys, progress=on_page)
        return columns, pages, client.requests


def build_from_columns(columns: KeyColumns, target, *, tree_options: TreeOptions,
                       image_options: ImageOptions, strict: bool = False,
                       report_path: str | Path | None = None,
                       summary: BuildSummary | None = None) -> BuildSummary:
    """Keys already in columns -> tree -> image (the part that is ours, no network)."""
    summary = summary if summary is not None else BuildSummary()
    image_options = image_options.resolved()
    if tree_options.build_time is None:
        tree_options.build_time = image_options.build_time

    started = time.monotonic()
    tree = build_tree(columns, tree_options)
    summary.timings["tree"] = time.monotonic() - started
    summary.reports = tree.reports
    summary.files, summary.directories = tree.files, tree.directories

    if report_path is not None:
        write_report(tree, report_path)
    if strict and tree.reports:
        first = tree.reports[0]
        raise StrictKeyError(
            f"--strict: {len(tree.reports)} key(s) cannot be represented exactly; first: "
            f"key '{escape_key(first.key)}' {first.detail}", tree.reports)

    started = time.monotonic()
    summary.image = write_image(tree, target, image_options)
    summary.timings["write"] = time.monotonic() - started
    summary.image_bytes = summary.image.bytes
    return summary


def build_from_bucket(source: BucketSource, target, *, config: ClientConfig,
                      tree_options: TreeOptions, image_options: ImageOptions,
                      list_version: int = 2, max_keys: int = 1000, keep_prefix: bool = False,
                      strict: bool = False, report_path=None, progress=None) -> BuildSummary:
    """List ``source`` and write its tree to ``target``; returns a ``BuildSummary``."""
    summary = BuildSummary()
    started = time.monotonic()
    columns, summary.pages, summary.requests = list_source(
        source, config, list_version=list_version, max_keys=max_keys, progress=progress)
    summary.timings["list"] = time.monotonic() - started
    summary.keys = len(columns)

    tree_options.prefix = b"" if keep_prefix else source.prefix.encode()
    return build_from_columns(columns, target, tree_options=tree_options,
                              image_options=image_options, strict=strict,
                              report_path=report_path, summary=summary)


def write_report(tree: Tree, path) -> None:
    """One JSON object per reported key: ``key``, ``reason``, ``action``."""
    with open(path, "w", encoding="utf-8") as f:
        for report in tree.reports:
            f.write(json.dumps(report.as_json(), ensure_ascii=False) + "\n")
