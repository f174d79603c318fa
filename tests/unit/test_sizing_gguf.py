"""The GGUF header reader against files written by llama.cpp's own gguf package."""

from pathlib import Path
from typing import IO

import gguf
import numpy as np
import pytest

from labsmith.sizing.gguf import GgufError, read_metadata, spec_from_gguf


def write_model(path: Path, *, tokens: int = 1000, tensor_bytes: int = 4096) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("Tiny Llama Test")
    writer.add_block_count(4)
    writer.add_context_length(8192)
    writer.add_embedding_length(256)
    writer.add_head_count(8)
    writer.add_head_count_kv(2)
    writer.add_token_list([f"t{n}" for n in range(tokens)])
    writer.add_tensor("blk.0.weight", np.zeros(tensor_bytes // 4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_reads_architecture_facts_and_file_size(tmp_path: Path) -> None:
    path = write_model(tmp_path / "tiny.gguf")
    spec = spec_from_gguf(path)
    assert (spec.name, spec.family, spec.layers, spec.attention_heads, spec.kv_heads) == (
        "Tiny Llama Test",
        "llama",
        4,
        8,
        2,
    )
    assert (spec.head_dim, spec.embedding, spec.vocab, spec.context) == (32, 256, 1000, 8192)
    assert spec.files == {"FILE": path.stat().st_size}


class CountingReader:
    """A binary file that counts the bytes read from it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.bytes_read += len(data)
        return data

    def __enter__(self) -> "CountingReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.close()


def test_only_the_header_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_model(tmp_path / "big.gguf", tensor_bytes=8 * 1024 * 1024)
    readers: list[CountingReader] = []

    def counting_open(self: Path, mode: str = "r") -> CountingReader:
        readers.append(CountingReader(open(self, "rb")))  # noqa: PTH123, SIM115
        return readers[-1]

    monkeypatch.setattr(Path, "open", counting_open)
    assert read_metadata(path)["llama.block_count"] == 4
    [reader] = readers
    assert reader.bytes_read < 64 * 1024 < 8 * 1024 * 1024 < path.stat().st_size


def test_not_a_gguf_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(GgufError, match="not a GGUF file"):
        read_metadata(path)


def test_truncated_header_is_refused(tmp_path: Path) -> None:
    path = write_model(tmp_path / "cut.gguf")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(GgufError, match="truncated"):
        read_metadata(path)
