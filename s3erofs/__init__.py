"""s3erofs: turn an S3 bucket listing, a local directory or a Python-built tree into EROFS."""

__version__ = "0.1.0"
