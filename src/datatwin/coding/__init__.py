"""Lossless compression with a twin: code data with the model's exact probabilities.

A twin gives `P(data)`; an entropy coder turns that into `-log2 P(data)` bits plus a few bytes
(Shannon), so `datatwin compress` writes about as many bytes as the twin's bits say. This
package is the kind-independent part:

* `coder`: `Encoder` / `Decoder` over one range-coded stream (FIFO): categorical batches,
  uniform integers in a range, strings from an open alphabet (escape + adaptive byte model).
* `layout`: the byte-exact formatting of a CSV (separator, quoting, line endings, BOM,
  encoding, header), which a table twin does not model; coded explicitly, cost reported apart.
* `container`: the file format (magic, version, model fingerprint, counts, output checksum,
  sections), shared-model or self-contained, parsed strictly with one-line errors.

How a kind plugs in (the adapters live with each kind):

* Encoding: walk the data in model order and yield batches `(symbols, distributions)` -- a
  table column by column (one row of `distributions` per table row), a text symbol by
  symbol -- calling `Encoder.encode_categorical` (or `encode_uniform` for a value inside a
  state, `encode_escaped` for a value the alphabet does not list). Sum the returned bits.
  Where the decoder must go one symbol at a time (text, series), the encoder knows the whole
  data and computes every position's distribution at once (`text_rows`, `series_steps` with
  `cells`), with the same float operations, and codes them in a few coder calls.
* Decoding: in the same order, compute each batch's distributions from what has been decoded
  so far (earlier columns, earlier symbols) and call the matching `Decoder.decode_*`. The
  float64 distributions must be bit-identical to the encoder's (same code, same order).
* Pack the stream (`Encoder.to_bytes()`), the layout and the counts needed to stop with
  `container.pack`; on decompression `Compressed.from_bytes`, `model_bytes(...)`, decode,
  rebuild, then `verify_output` before writing anything.
"""

from .coder import AdaptiveByteModel, Decoder, Encoder, decode_escaped, encode_escaped
from .container import Compressed, fingerprint, pack
from .layout import Layout, SplitCSV, rebuild, split
from .wire import CompressedFileError

__all__ = [
    "AdaptiveByteModel",
    "Compressed",
    "CompressedFileError",
    "Decoder",
    "Encoder",
    "Layout",
    "SplitCSV",
    "decode_escaped",
    "encode_escaped",
    "fingerprint",
    "pack",
    "rebuild",
    "split",
]
