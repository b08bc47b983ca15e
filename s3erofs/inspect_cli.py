"""``s3erofs ls``, ``stat`` and ``verify``: look inside an image without mounting it."""


def add_parsers(sub, add_s3_options, add_output_options) -> None:
    pass
