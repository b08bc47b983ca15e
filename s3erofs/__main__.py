"""``python -m s3erofs``."""

import sys

from .cli import main

sys.exit(main())
