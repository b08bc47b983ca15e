"""``s3erofs mkfs``: mkfs.erofs's S3 command line, built by s3erofs."""


def add_parser(sub) -> None:
    pass
