"""Exception classes of s3erofs. Each names what caused it and carries an exit code.

Exit codes (documented in ``s3erofs --help`` and the README):

====  ==========================================================
0     success
1     ``verify`` found differences between image and bucket
2     usage error (bad option, bad URL, unreadable credentials)
3     S3 or network error (after retries), or a malformed listing
4     ``--strict``: a key could not be represented exactly
5     image error: a format limit was exceeded, or an image is corrupt
====  ==========================================================
"""


class S3erofsError(Exception):
    """Base class; ``exit_code`` is what the command line exits with."""

    exit_code = 1


class UsageError(S3erofsError, ValueError):
    """A bad option, URL or argument."""

    exit_code = 2


class CredentialsError(S3erofsError):
    """Credentials could not be found or read (never shows a secret)."""

    exit_code = 2


class TreeError(S3erofsError, ValueError):
    """An entry cannot be added: a bad or clashing path, a bad value. ``path`` is bytes."""

    exit_code = 2

    def __init__(self, message, path: bytes | None = None):
        super().__init__(message)
        self.path = path


class SourceError(S3erofsError, OSError):
    """The source directory, or an entry below it, cannot be read; names the path."""

    exit_code = 2


class S3Error(S3erofsError):
    """S3 answered with an error, or the request failed after all attempts.

    Attributes keep every detail: ``status`` (HTTP status or None), ``code`` and
    ``s3_message`` (from the ``<Error>`` body), ``request_id``, ``url`` (without
    credentials), ``attempts``.
    """

    exit_code = 3

    def __init__(self, message, *, status=None, code=None, s3_message=None,
                 request_id=None, url=None, attempts=1):
        super().__init__(message)
        self.status = status
        self.code = code
        self.s3_message = s3_message
        self.request_id = request_id
        self.url = url
        self.attempts = attempts


class ListingError(S3erofsError):
    """A listing page was malformed or pagination did not progress."""

    exit_code = 3


class StrictKeyError(S3erofsError):
    """``--strict``: at least one key was skipped or changed."""

    exit_code = 4

    def __init__(self, message, reports=()):
        super().__init__(message)
        self.reports = list(reports)


class ImageError(S3erofsError):
    """The tree cannot be written as EROFS (a format limit), or writing failed."""

    exit_code = 5


class CorruptImageError(ImageError):
    """An image failed validation while being read; names the nid and byte offset."""

    def __init__(self, message, *, nid=None, offset=None):
        super().__init__(message)
        self.nid = nid
        self.offset = offset


class UnsupportedImageError(ImageError, NotImplementedError):
    """A valid image uses a feature this reader does not implement (compression, 48-bit).
    """

    def __init__(self, message, *, nid=None, offset=None):
        super().__init__(message)
        self.nid = nid
        self.offset = offset
