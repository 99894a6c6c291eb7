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
    flags: tuple[object, ...],
    row: np.ndarray,
    rare: Callable[[int, int], int],
    /,
) -> None: ...
def level_rows(
    col_f: np.ndarray,
    col_i: np.ndarray,
    comp: np.ndarray,
    e: np.ndarray,
    mean: np.ndarray,
    s: np.ndarray,
    out: np.ndarray,
    outer: bool,
    /,
) -> None: ...
def pull_terms(
    C: np.ndarray,
    Zt: np.ndarray,
    lag: np.ndarray,
    src: np.ndarray,
    coef: np.ndarray,
    term_at: np.ndarray,
    r0: int,
    out: np.ndarray,
    /,
) -> None: ...
def softmax_rows(
    h: np.ndarray,
    wT: np.ndarray,
    b: np.ndarray,
    seen: np.ndarray,
    prior: np.ndarray,
    eps: float,
    out: np.ndarray,
    /,
) -> None: ...
