"""s3erofs: turn an S3 bucket listing, a local directory or a Python-built tree into EROFS.

The public API (imported on first use, so ``import s3erofs`` stays cheap)::

    ImageBuilder            build an image entry by entry (s3erofs.api)
    build_from_bucket       s3://BUCKET[/PREFIX] -> meta-only image
    build_from_directory    local directory -> image, with data or meta-only
    open                    read an image: walk, listdir, stat, readlink, read
    BuildSummary, ImageStats, and the exception classes (S3erofsError and subclasses)
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ImageBuilder": "api",
    "build_from_bucket": "api",
    "build_from_directory": "api",
    "open": "api",
    "TreeError": "api",
    "SourceError": "localsrc",
    "BuildSummary": "build",
    "ImageStats": "write",
    "ImageOptions": "write",
    "S3erofsError": "errors",
    "UsageError": "errors",
    "CredentialsError": "errors",
    "S3Error": "errors",
    "ListingError": "errors",
    "StrictKeyError": "errors",
    "ImageError": "errors",
    "CorruptImageError": "errors",
    "UnsupportedImageError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 's3erofs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
