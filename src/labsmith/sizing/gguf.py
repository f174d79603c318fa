"""Size a model from a local GGUF file's header: metadata only, never the tensors.

GGUF (llama.cpp's ggml/docs/gguf.md) starts with ``GGUF``, a version, the tensor and
metadata counts, then typed key/value pairs. Only that key/value section is read (a few MB
at most, for the tokenizer's vocabulary), stopping before the tensor data that makes up the
gigabytes. The weights are then the file's size on disk.
"""

import math
import struct
from pathlib import Path
from typing import BinaryIO

from labsmith.sizing.catalog import ModelSpec

MAGIC = b"GGUF"
# Value type codes and their struct formats (little-endian), from the GGUF specification.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# The smallest encoding of one value of each type: an array's count is checked against the
# bytes left in the file before anything is read or allocated.
_MIN_BYTES = {kind: struct.calcsize(fmt) for kind, fmt in _SCALARS.items()} | {
    _STRING: 8,
    _ARRAY: 12,
}
# Bounds a real header stays far inside (the longest strings are chat templates of some
# tens of KB; vocabularies hold a few hundred thousand tokens; arrays nest one level), so a
# crafted header cannot make the reader allocate or loop without end.
MAX_STRING_BYTES = 16 * 1024**2
MAX_ARRAY_ITEMS = 16 * 1024**2
MAX_ARRAY_NESTING = 4
# Model dimensions (layers, heads, context, ...) are counts well under 2^32.
MAX_DIMENSION = 2**32
Value = int | float | bool | str | list["Value"]


class GgufError(ValueError):
    """Not a GGUF file, or one without the keys sizing needs; the message names the file."""


class _Header:
    """A GGUF file's header, read in order, knowing how many bytes the file has left."""

    def __init__(self, stream: BinaryIO, size: int, path: Path) -> None:
        self._stream = stream
        self._left = size
        self._path = path

    def error(self, problem: str) -> GgufError:
        return GgufError(f"{self._path}: {problem}")

    def read(self, count: int) -> bytes:
        data = self._stream.read(count) if count <= self._left else b""
        if len(data) != count:
            raise self.error("the GGUF header ends early: the file is truncated")
        self._left -= count
        return data

    def unpack(self, fmt: str) -> int:
        value: int = struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]
        return value

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > MAX_STRING_BYTES:
            raise self.error(
                f"a string of {length:,} bytes, more than a GGUF header ever holds "
                f"({MAX_STRING_BYTES:,}): the header is damaged or crafted"
            )
        return self.read(length).decode("utf-8", errors="replace")

    def value(self, kind: int, nesting: int = 0) -> Value:
        if kind in _SCALARS:
            scalar: int | float | bool = struct.unpack(_SCALARS[kind], self.read(_MIN_BYTES[kind]))[
                0
            ]
            return scalar
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise self.error(f"unknown GGUF value type {kind}")
        if nesting >= MAX_ARRAY_NESTING:
            raise self.error(
                f"arrays nested deeper than {MAX_ARRAY_NESTING} levels: the header is damaged "
                "or crafted"
            )
        item_kind, count = self.unpack("<I"), self.unpack("<Q")
        if count > MAX_ARRAY_ITEMS or count * _MIN_BYTES.get(item_kind, 1) > self._left:
            raise self.error(
                f"an array of {count:,} values, more than the file holds: the header is "
                "damaged or crafted"
            )
        return [self.value(item_kind, nesting + 1) for _ in range(count)]


def read_metadata(path: Path) -> dict[str, Value]:
    if not path.is_file():
        raise GgufError(f"{path}: not a regular file")
    with path.open("rb") as stream:
        if stream.read(4) != MAGIC:
            raise GgufError(f"{path}: not a GGUF file (no GGUF magic at its start)")
        header = _Header(stream, path.stat().st_size - 4, path)
        version = header.unpack("<I")
        if version < 2:
            raise header.error(f"GGUF version {version} predates 64-bit counts; convert it again")
        return _read_key_values(header)


def _read_key_values(header: _Header) -> dict[str, Value]:
    _tensors, count = header.unpack("<Q"), header.unpack("<Q")
    metadata: dict[str, Value] = {}
    for _ in range(count):
        key = header.string()
        metadata[key] = header.value(header.unpack("<I"))
    return metadata


def spec_from_gguf(path: Path) -> ModelSpec:
    metadata = read_metadata(path)
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise GgufError(f"{path}: no general.architecture in its metadata")

    def number(key: str, default: Value | None = None, minimum: int = 1) -> int:
        value = metadata.get(f"{arch}.{key}", default)
        if value is None:
            raise GgufError(f"{path}: no {arch}.{key} in its metadata")
        return _dimension(path, f"{arch}.{key}", value, minimum)

    heads = number("attention.head_count")
    embedding = number("embedding_length")
    tokens = metadata.get("tokenizer.ggml.tokens")
    vocab = number("vocab_size", len(tokens) if isinstance(tokens, list) else 0, minimum=0)
    window = metadata.get(f"{arch}.attention.sliding_window")
    head_dim_default = embedding // heads
    return ModelSpec(
        name=str(metadata.get("general.name", path.stem)),
        family=arch,
        parameters=0,
        layers=number("block_count"),
        attention_heads=heads,
        kv_heads=number("attention.head_count_kv", heads),
        head_dim=number("attention.key_length", head_dim_default or None),
        embedding=embedding,
        vocab=vocab,
        context=number("context_length"),
        sliding_window=(
            window
            if isinstance(window, int)
            and not isinstance(window, bool)
            and 0 < window <= MAX_DIMENSION
            else None
        ),
        files={"FILE": path.stat().st_size},
    )


def _dimension(path: Path, key: str, value: Value, minimum: int) -> int:
    """A model dimension as a whole number from ``minimum`` to 2^32; a per-layer list (some
    models vary KV heads by layer, with 0 on layers without attention) gives its largest."""
    if isinstance(value, list):
        if not value:
            raise GgufError(f"{path}: {key} is an empty list; it needs a number per layer")
        per_layer = [_dimension(path, key, item, 0) for item in value]
        return _dimension(path, key, max(per_layer), minimum)
    if (
        isinstance(value, str | bool)
        or not math.isfinite(value)
        or value != int(value)
        or not minimum <= value <= MAX_DIMENSION
    ):
        raise GgufError(
            f"{path}: {key} is {value!r}; a model's header gives it as a whole number "
            f"from {minimum} to {MAX_DIMENSION:,}: the file is damaged or not a model"
        )
    return int(value)
