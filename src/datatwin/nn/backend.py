"""torch as an optional extra: import it lazily, configure it for reproducible CPU training.

Training is bit-for-bit reproducible on CPU for a seed, a thread count and a step count:
`torch.use_deterministic_algorithms(True)`, a fixed number of intra-op threads and seeded
generators. A wall-clock `time_budget` only decides *how many* steps a first fit runs (from
the measured speed of its first steps); the count is kept in the structure label
(`neural[steps=...]`), so fitting that label again repeats the same steps exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..errors import InputError

EXTRA = 'pip install "datatwin[neural]"'


def torch_or_none() -> Any:
    """The torch module, or None when the optional extra is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def require_torch(what: str) -> Any:
    """The torch module, or an InputError naming the extra to install."""
    torch = torch_or_none()
    if torch is None:
        raise InputError(f"{what} needs torch, which is not installed; {EXTRA}")
    return torch


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; 'cuda' without a GPU is an InputError."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda; got {device!r}")
    torch = require_torch("neural training")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' asked for, but torch sees no GPU; use --device cpu")
    return device


@contextlib.contextmanager
def deterministic(seed: int, threads: int) -> Iterator[Any]:
    """torch seeded, deterministic and on `threads` intra-op threads; restored afterwards."""
    torch = require_torch("neural training")
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield torch
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def fast_bf16(device: str) -> bool:
    """Whether bfloat16 products are fast here: on a CPU with AVX-512 BF16 or AMX
    instructions (GRU-512 training steps: 0.35 s against 0.63 s in float32 on this machine's
    2 cores). Elsewhere torch emulates them slowly, and GPUs are left in float32 (untested)."""
    if device != "cpu":
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = set(fh.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})
