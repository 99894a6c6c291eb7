# Types of the compiled series decoder and portable functions (_series.c); see
# series_compiled.py and fixedmath.py for their arguments.
from collections.abc import Callable

import numpy as np

def set_constants(
    consts: np.ndarray,
    table: np.ndarray,
    exp2: np.ndarray,
    pieces: int,
    degree: int,
    per_unit: int,
    /,
) -> None: ...
def exp(x: np.ndarray, out: np.ndarray, /) -> None: ...
def log(x: np.ndarray, out: np.ndarray, /) -> None: ...
def ndtr(x: np.ndarray, out: np.ndarray, /) -> None: ...
def decode_steps(
    plan: object,
    decode: Callable[[object], int],
    model: Callable[..., object],
    row: np.ndarray,
    rare: Callable[[int, int], int],
    /,
) -> None: ...
