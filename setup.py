"""The one compiled part: an optional accelerator for coding text and events (see
src/datatwin/text/_walker.c). Without a C compiler the install goes on without it and
the same code runs in Python, with the same bits, more slowly."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "datatwin.text._walker",
            ["src/datatwin/text/_walker.c"],
            optional=True,
            # exact IEEE-754 doubles: no fused multiply-add, no fast-math
            extra_compile_args=["-O2", "-ffp-contract=off"],
        )
    ]
)
