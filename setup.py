"""Build the Cython extensions in s3erofs/_fast; all metadata lives in pyproject.toml."""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

EXTENSIONS = [
    Extension(
        f"s3erofs._fast.{pyx.stem}",
        [str(pyx)],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O2"],
    )
    for pyx in sorted(Path("s3erofs/_fast").glob("*.pyx"))
]

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
}

setup(ext_modules=cythonize(EXTENSIONS, compiler_directives=DIRECTIVES))
