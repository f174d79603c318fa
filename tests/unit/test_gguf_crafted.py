"""GGUF headers crafted to break the reader: each is refused by ``labsmith fit --gguf`` with
exit 2 and a message naming the file and what is wrong, never a traceback.

The files are written byte by byte with struct (the GGUF layout: magic, version, tensor and
key/value counts, then key, type code, value), so that every field can hold what no writer
would put there.
"""

import math
import os
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from labsmith.cli import main
from labsmith.sizing.gguf import MAX_ARRAY_NESTING, read_metadata

U32, I32, F32, BOOL, STRING, ARRAY, U64, F64 = 4, 5, 6, 7, 8, 9, 10, 12


def text(value: str) -> bytes:
    data = value.encode()
    return struct.pack("<Q", len(data)) + data


def entry(key: str, kind: int, payload: bytes) -> bytes:
    return text(key) + struct.pack("<I", kind) + payload


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


BASE = {
    "general.architecture": (STRING, text("llama")),
    "general.name": (STRING, text("crafted")),
    "llama.block_count": (U32, u32(4)),
    "llama.context_length": (U32, u32(8192)),
    "llama.embedding_length": (U32, u32(256)),
    "llama.attention.head_count": (U32, u32(8)),
    "llama.attention.head_count_kv": (U32, u32(2)),
}


def write_gguf(
    path: Path, changes: dict[str, tuple[int, bytes] | None], *, tail: bytes = b"\0" * 4096
) -> Path:
    """BASE with ``changes`` applied (None removes a key), then ``tail`` as tensor data."""
    fields = {**BASE, **changes}
    present = [(key, value) for key, value in fields.items() if value is not None]
    body = b"".join(entry(key, kind, payload) for key, (kind, payload) in present)
    path.write_bytes(b"GGUF" + u32(3) + struct.pack("<QQ", 0, len(present)) + body + tail)
    return path


def fit_gguf(path: Path) -> Result:
    return CliRunner().invoke(main, ["fit", "--gguf", str(path), "--gpu", "24"])


def nested_arrays(depth: int) -> bytes:
    return struct.pack("<IQ", ARRAY, 1) * (depth - 1) + struct.pack("<IQ", U32, 0)


CRAFTED = [
    pytest.param(
        {"llama.attention.head_count": (U32, u32(0))},
        "llama.attention.head_count is 0",
        id="zero-heads",
    ),
    pytest.param(
        {"llama.attention.head_count": (F32, struct.pack("<f", math.nan))},
        "llama.attention.head_count is nan",
        id="nan-heads",
    ),
    pytest.param(
        {"llama.attention.head_count": (F64, struct.pack("<d", math.inf))},
        "llama.attention.head_count is inf",
        id="infinite-heads",
    ),
    pytest.param(
        {"llama.attention.head_count_kv": (F32, struct.pack("<f", -math.inf))},
        "llama.attention.head_count_kv is -inf",
        id="minus-infinite-kv-heads",
    ),
    pytest.param(
        {"llama.block_count": (I32, struct.pack("<i", -5))},
        "llama.block_count is -5",
        id="negative-block-count",
    ),
    pytest.param(
        {"llama.block_count": (BOOL, b"\x01")},
        "llama.block_count is True",
        id="boolean-block-count",
    ),
    pytest.param(
        {"llama.context_length": (F32, struct.pack("<f", 1.5))},
        "llama.context_length is 1.5",
        id="fractional-context",
    ),
    pytest.param(
        {"llama.embedding_length": (U64, struct.pack("<Q", 2**63))},
        "llama.embedding_length is 9223372036854775808",
        id="huge-embedding",
    ),
    pytest.param(
        {"llama.attention.head_count_kv": (ARRAY, struct.pack("<IQ", U32, 0))},
        "llama.attention.head_count_kv is an empty list",
        id="empty-per-layer-list",
    ),
    pytest.param(
        {"llama.attention.head_count_kv": (ARRAY, struct.pack("<IQ", I32, 2) + b"\xff" * 8)},
        "llama.attention.head_count_kv is -1",
        id="negative-per-layer-value",
    ),
    pytest.param(
        {"general.architecture": None},
        "no general.architecture in its metadata",
        id="no-architecture",
    ),
    pytest.param(
        {"llama.block_count": None},
        "no llama.block_count in its metadata",
        id="no-block-count",
    ),
    pytest.param(
        {"general.name": (STRING, struct.pack("<Q", 2**62) + b"x")},
        "a string of 4,611,686,018,427,387,904 bytes",
        id="2^62-byte-string",
    ),
    pytest.param(
        {"general.name": (STRING, struct.pack("<Q", 2**64 - 1))},
        "a string of 18,446,744,073,709,551,615 bytes",
        id="2^64-byte-string",
    ),
    pytest.param(
        {"tokenizer.ggml.tokens": (ARRAY, struct.pack("<IQ", STRING, 2**60))},
        "an array of 1,152,921,504,606,846,976 values, more than the file holds",
        id="array-longer-than-the-file",
    ),
    pytest.param(
        {"general.tags": (ARRAY, nested_arrays(100_000))},
        f"arrays nested deeper than {MAX_ARRAY_NESTING} levels",
        id="deep-arrays",
    ),
    pytest.param(
        {"general.tags": (99, b"")},
        "unknown GGUF value type 99",
        id="unknown-type",
    ),
]


@pytest.mark.parametrize(("changes", "words"), CRAFTED)
def test_a_crafted_header_is_refused_with_exit_2_naming_the_file(
    tmp_path: Path, changes: dict[str, tuple[int, bytes] | None], words: str
) -> None:
    path = write_gguf(tmp_path / "crafted.gguf", changes)
    result = fit_gguf(path)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"error: {path}: " in result.stderr
    assert words in result.stderr


def test_the_untouched_base_header_fits(tmp_path: Path) -> None:
    """The builder itself writes a good file: each refusal above is its one change."""
    result = fit_gguf(write_gguf(tmp_path / "good.gguf", {}))
    assert result.exit_code == 0, result.output
    assert "all 4 layers on gpu0" in result.stdout


def test_a_per_layer_list_with_zeros_gives_its_largest(tmp_path: Path) -> None:
    # Hybrid models list 0 KV heads for their layers without attention.
    per_layer = struct.pack("<IQ", U32, 4) + b"".join(u32(n) for n in (0, 4, 0, 4))
    path = write_gguf(
        tmp_path / "hybrid.gguf", {"llama.attention.head_count_kv": (ARRAY, per_layer)}
    )
    assert read_metadata(path)["llama.attention.head_count_kv"] == [0, 4, 0, 4]
    assert fit_gguf(path).exit_code == 0


def test_a_header_cut_short_names_the_file(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "cut.gguf", {}, tail=b"")
    path.write_bytes(path.read_bytes()[:60])
    result = fit_gguf(path)
    assert result.exit_code == 2
    assert f"{path}: the GGUF header ends early" in result.stderr


def test_a_fifo_given_as_the_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    result = fit_gguf(fifo)
    assert result.exit_code == 2
    assert f"{fifo}: not a regular file" in result.stderr
