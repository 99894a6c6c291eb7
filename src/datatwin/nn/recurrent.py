"""A recurrent network over symbols, as plain float32 arrays with a numpy forward pass.

    e_t = E[x_t]                                  (embedding of the input symbol)
    LSTM layer:  i,f,g,o = split(W_ih e + b_ih + W_hh h + b_hh)
                 c' = σ(f) c + σ(i) tanh(g),  h' = σ(o) tanh(c')
    GRU layer:   r,z = σ(split(W_ih e + b_ih + W_hh h + b_hh)[:2]),
                 n = tanh(W_in e + b_in + r (W_hn h + b_hn)),  h' = (1 - z) n + z h
    p(y | x_≤t) = (1 - ε) softmax_{y ≠ escape}(W_out h_t + b_out) + ε / V_out

(the `escape` outcome, e.g. the symbol standing for anything unseen in training, never occurs
as a training target: it gets the floor ε / V_out alone instead of whatever an undertrained
output layer leaves it)
(torch's gate layouts, so weights trained with torch.nn.LSTM/GRU load unchanged). The floor ε
keeps every outcome's probability above zero, and each row sums to one. The numpy pass is
the model's definition: scoring and sampling use it, with or without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFileError

EPS_FLOOR = 1e-4
CELLS = {"lstm": 4, "gru": 3}


#: rows per matrix product: BLAS rounds a row's dot products differently depending on how
#: many rows a call has (its kernels differ by shape, and by CPU), so every product is made
#: of calls of exactly this many rows. One: sampling steps one row at a time, and a padded
#: block of 8 made each step cost 8 rows (GRU-512: 313 µs a step against 63 µs); batch
#: scoring pays 79 µs a row against 57 for the large products, less elsewhere.
ROW_BLOCK = 1


def matmul_t(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """a @ w.T with each row's result independent of how many rows `a` has and where the
    row is among them: the rows go through BLAS in blocks of exactly `ROW_BLOCK` (the last
    padded with zeros; with one row a block, none), one call shape for every batch, so a
    prefix scores bit for bit the same alone, in a batch, or while sampling."""
    n = a.shape[0]
    m = -(-n // ROW_BLOCK) * ROW_BLOCK
    if m != n:
        a = np.concatenate([a, np.zeros((m - n, a.shape[1]), a.dtype)])
    out = np.matmul(a.reshape(-1, ROW_BLOCK, a.shape[1]), w.T)  # one gemm per block
    return out.reshape(m, -1)[:n]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def output_probs(
    h: np.ndarray, w_out: np.ndarray, b_out: np.ndarray, escape: int | None
) -> np.ndarray:
    """(1 - ε) softmax(w_out h + b_out) + ε / V for each row of `h`, float64 rows summing to
    one (the `escape` outcome gets the floor alone)."""
    logits = (matmul_t(h, w_out) + b_out).astype(np.float64)
    if escape is not None:
        logits[:, escape] = -np.inf
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return (1.0 - EPS_FLOOR) * p + EPS_FLOOR / w_out.shape[0]


class SymbolNet:
    """What scoring, sampling and adaptation read of a network over symbols: `step` from
    `zero_state`, and an output layer (`w_out`, `b_out`, `escape`) over its last states of
    width `hidden`. `RecurrentNet` is one; `ensemble.Ensemble` is several side by side."""

    w_out: np.ndarray
    b_out: np.ndarray
    escape: int | None

    @property
    def hidden(self) -> int:
        raise NotImplementedError

    @property
    def n_in(self) -> int:
        raise NotImplementedError

    @property
    def n_out(self) -> int:
        return int(self.w_out.shape[0])

    def n_params(self) -> int:
        raise NotImplementedError

    def zero_state(self, batch: int) -> list[np.ndarray]:
        raise NotImplementedError

    def step(self, x: np.ndarray, state: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def settings(self) -> dict[str, object]:
        """What a model file records beside the arrays to rebuild the network."""
        raise NotImplementedError

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def probs(self, h: np.ndarray) -> np.ndarray:
        """Output distributions (float64 rows summing to one) for last-layer states `h`."""
        return output_probs(h, self.w_out, self.b_out, self.escape)

    def states(self, inputs: np.ndarray) -> np.ndarray:
        """The last layer's state after each input of `inputs` (B, T) read from a zero
        state: (B, T, H) float32."""
        B, T = inputs.shape
        state = self.zero_state(B)
        out = np.empty((B, T, self.hidden), np.float32)
        for t in range(T):
            out[:, t] = self.step(inputs[:, t], state)
        return out

    def run(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Probability of `targets[b, t]` after reading `inputs[b, :t+1]` from a zero state
        (float64, shape of `inputs`; targets < 0 are padding and give 1)."""
        B, T = inputs.shape
        state = self.zero_state(B)
        out = np.ones((B, T))
        rows = np.arange(B)
        for t in range(T):
            h = self.step(inputs[:, t], state)
            tt = targets[:, t]
            live = tt >= 0
            if live.any():
                p = self.probs(h[live])
                out[rows[live], t] = p[np.arange(int(live.sum())), tt[live]]
        return out


@dataclass
class RecurrentNet(SymbolNet):
    """Embedding -> `layers` recurrent layers -> softmax over `n_out` outcomes."""

    cell: str
    emb: np.ndarray  # (n_in, E)
    w_ih: list[np.ndarray]  # (G H, in)
    w_hh: list[np.ndarray]  # (G H, H)
    b_ih: list[np.ndarray]  # (G H,)
    b_hh: list[np.ndarray]  # (G H,)
    w_out: np.ndarray  # (n_out, H)
    b_out: np.ndarray  # (n_out,)
    escape: int | None = None

    def __post_init__(self) -> None:
        # first layer's input projection is a lookup: one row per input symbol
        self._table0 = (self.emb @ self.w_ih[0].T + self.b_ih[0]).astype(np.float32)

    @property
    def hidden(self) -> int:
        return int(self.w_hh[0].shape[1])

    @property
    def n_in(self) -> int:
        return int(self.emb.shape[0])

    def settings(self) -> dict[str, object]:
        return {"cell": self.cell, "layers": len(self.w_hh)}

    def n_params(self) -> int:
        arrays = [self.emb, self.w_out, self.b_out, *self.w_ih, *self.w_hh, *self.b_ih, *self.b_hh]
        return int(sum(a.size for a in arrays))

    # ---- forward ----------------------------------------------------------------------
    def zero_state(self, batch: int) -> list[np.ndarray]:
        """Hidden (and, for an LSTM, cell) state per layer, all zeros."""
        per = 2 if self.cell == "lstm" else 1
        return [np.zeros((batch, self.hidden), np.float32) for _ in range(per * len(self.w_hh))]

    def step(self, x: np.ndarray, state: list[np.ndarray]) -> np.ndarray:
        """Advance `state` (in place) by the input symbols `x` (batch,); the last layer's h."""
        H = self.hidden
        inp: np.ndarray = np.zeros(0, np.float32)
        for layer in range(len(self.w_hh)):
            gi = (
                self._table0[x]
                if layer == 0
                else matmul_t(inp, self.w_ih[layer]) + self.b_ih[layer]
            )
            if self.cell == "lstm":
                h, c = state[2 * layer], state[2 * layer + 1]
                g = gi + matmul_t(h, self.w_hh[layer]) + self.b_hh[layer]
                c2 = _sigmoid(g[:, H : 2 * H]) * c + _sigmoid(g[:, :H]) * np.tanh(
                    g[:, 2 * H : 3 * H]
                )
                h2 = _sigmoid(g[:, 3 * H :]) * np.tanh(c2)
                state[2 * layer], state[2 * layer + 1] = h2, c2
            else:
                h = state[layer]
                gh = matmul_t(h, self.w_hh[layer]) + self.b_hh[layer]
                r = _sigmoid(gi[:, :H] + gh[:, :H])
                z = _sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
                n = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
                h2 = (1.0 - z) * n + z * h
                state[layer] = h2
            inp = h2
        return inp

    # ---- storage ----------------------------------------------------------------------
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}emb": self.emb, f"{prefix}w_out": self.w_out, f"{prefix}b_out": self.b_out}
        for i in range(len(self.w_hh)):
            out[f"{prefix}w_ih{i}"] = self.w_ih[i]
            out[f"{prefix}w_hh{i}"] = self.w_hh[i]
            out[f"{prefix}b_ih{i}"] = self.b_ih[i]
            out[f"{prefix}b_hh{i}"] = self.b_hh[i]
        return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        prefix: str,
        cell: str,
        layers: int,
        source: str,
        escape: int | None = None,
    ) -> RecurrentNet:
        """Load and validate shapes and finiteness (ModelFileError otherwise)."""
        if cell not in CELLS or not (1 <= layers <= 8):
            raise ModelFileError(f"{source}: bad recurrent network ({cell!r}, {layers} layers)")

        def get(name: str, ndim: int) -> np.ndarray:
            a = arrays.get(prefix + name)
            if a is None or a.ndim != ndim or a.dtype.kind != "f" or not np.isfinite(a).all():
                raise ModelFileError(f"{source}: network array {prefix + name} missing or invalid")
            return np.ascontiguousarray(a, np.float32)

        emb, w_out, b_out = get("emb", 2), get("w_out", 2), get("b_out", 1)
        H = w_out.shape[1]
        G = CELLS[cell] * H
        w_ih, w_hh, b_ih, b_hh = [], [], [], []
        for i in range(layers):
            w_ih.append(get(f"w_ih{i}", 2))
            w_hh.append(get(f"w_hh{i}", 2))
            b_ih.append(get(f"b_ih{i}", 1))
            b_hh.append(get(f"b_hh{i}", 1))
            want_in = emb.shape[1] if i == 0 else H
            if (
                w_ih[i].shape != (G, want_in)
                or w_hh[i].shape != (G, H)
                or b_ih[i].shape != (G,)
                or b_hh[i].shape != (G,)
            ):
                raise ModelFileError(f"{source}: network layer {i} has inconsistent shapes")
        if b_out.shape != (w_out.shape[0],) or min(emb.shape + w_out.shape) < 1:
            raise ModelFileError(f"{source}: network output layer has inconsistent shapes")
        if escape is not None and not 0 <= escape < w_out.shape[0]:
            raise ModelFileError(f"{source}: network escape outcome out of range")
        return cls(cell, emb, w_ih, w_hh, b_ih, b_hh, w_out, b_out, escape)
