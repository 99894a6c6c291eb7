"""The compiled parts: optional accelerators for coding text and events
(src/datatwin/text/_walker.c) and series (src/datatwin/coding/_series.c). Without a C
compiler the install goes on without them and the same code runs in Python, with the same
bits, more slowly."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "datatwin.text._walker",
            ["src/datatwin/text/_walker.c"],
            optional=True,
            # exact IEEE-754 doubles: no fused multiply-add, no fast-math
            extra_compile_args=["-O2", "-ffp-contract=off"],
        ),
        Extension(
            "datatwin.coding._series",
            ["src/datatwin/coding/_series.c"],
            depends=[
                "src/datatwin/coding/_fixedmath.h",
                "src/datatwin/coding/_cells.h",
                "src/datatwin/coding/_encoder.h",
                "src/datatwin/coding/_dense.h",
            ],
            optional=True,
            extra_compile_args=["-O3", "-ffp-contract=off"],
        ),
    ]
)
