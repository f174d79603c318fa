"""Size a model from a local GGUF file's header: metadata only, never the tensors.

GGUF (llama.cpp's ggml/docs/gguf.md) starts with ``GGUF``, a version, the tensor and
metadata counts, then typed key/value pairs. Only that key/value section is read (a few MB
at most, for the tokenizer's vocabulary), stopping before the tensor data that makes up the
gigabytes. The weights are then the file's size on disk.
"""

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
Value = int | float | bool | str | list["Value"]


class GgufError(ValueError):
    """Not a GGUF file, or one without the keys sizing needs."""


def read_metadata(path: Path) -> dict[str, Value]:
    with path.open("rb") as stream:
        if stream.read(4) != MAGIC:
            raise GgufError(f"{path}: not a GGUF file (no GGUF magic at its start)")
        version = _unpack(stream, "<I")
        if version < 2:
            raise GgufError(
                f"{path}: GGUF version {version} predates 64-bit counts; convert it again"
            )
        _tensors, count = _unpack(stream, "<Q"), _unpack(stream, "<Q")
        metadata: dict[str, Value] = {}
        for _ in range(count):
            key = _string(stream)
            metadata[key] = _value(stream, _unpack(stream, "<I"))
        return metadata


def spec_from_gguf(path: Path) -> ModelSpec:
    metadata = read_metadata(path)
    arch = str(metadata.get("general.architecture", ""))

    def number(key: str, default: int | None = None) -> int:
        value = metadata.get(f"{arch}.{key}", default)
        if isinstance(value, list):  # per-layer values (some models vary KV heads per layer)
            value = max(int(v) for v in value if isinstance(v, int | float))
        if not isinstance(value, int | float):
            raise GgufError(f"{path}: no {arch}.{key} in its metadata")
        return int(value)

    heads = number("attention.head_count")
    embedding = number("embedding_length")
    tokens = metadata.get("tokenizer.ggml.tokens")
    vocab = number("vocab_size", len(tokens) if isinstance(tokens, list) else 0)
    window = metadata.get(f"{arch}.attention.sliding_window")
    return ModelSpec(
        name=str(metadata.get("general.name", path.stem)),
        family=arch,
        parameters=0,
        layers=number("block_count"),
        attention_heads=heads,
        kv_heads=number("attention.head_count_kv", heads),
        head_dim=number("attention.key_length", embedding // heads),
        embedding=embedding,
        vocab=vocab,
        context=number("context_length"),
        sliding_window=int(window) if isinstance(window, int) else None,
        files={"FILE": path.stat().st_size},
    )


def _unpack(stream: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    data = stream.read(size)
    if len(data) != size:
        raise GgufError("the GGUF header ends early: the file is truncated")
    value: int = struct.unpack(fmt, data)[0]
    return value


def _string(stream: BinaryIO) -> str:
    length = _unpack(stream, "<Q")
    return stream.read(length).decode("utf-8", errors="replace")


def _value(stream: BinaryIO, kind: int) -> Value:
    if kind in _SCALARS:
        size = struct.calcsize(_SCALARS[kind])
        data = stream.read(size)
        if len(data) != size:
            raise GgufError("the GGUF header ends early: the file is truncated")
        scalar: int | float | bool = struct.unpack(_SCALARS[kind], data)[0]
        return scalar
    if kind == _STRING:
        return _string(stream)
    if kind == _ARRAY:
        item_kind, count = _unpack(stream, "<I"), _unpack(stream, "<Q")
        return [_value(stream, item_kind) for _ in range(count)]
    raise GgufError(f"unknown GGUF value type {kind}")
