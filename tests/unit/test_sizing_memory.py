"""The memory terms against hand calculations."""

import pytest

from labsmith.sizing.catalog import ModelSpec
from labsmith.sizing.memory import compute_bytes, kv_cache_bytes, model_memory, weights_bytes

GIB = 1024**3
MIB = 1024**2
# Mistral 7B v0.3 (config.json): 32 layers, 32 heads, 8 KV heads, head dim 128.
MISTRAL_7B = ModelSpec(
    name="mistral:7b",
    family="llama",
    parameters=7_248_023_552,
    layers=32,
    attention_heads=32,
    kv_heads=8,
    head_dim=128,
    embedding=4096,
    vocab=32768,
    context=32768,
    files={"Q4_K_M": 4_372_812_000},
)
# Gemma 2 9B (config.json): 42 layers, 16 heads, 8 KV heads, head dim 256, every other layer
# attends to a 4096-token window.
GEMMA2_9B = ModelSpec(
    name="gemma2:9b",
    family="gemma2",
    parameters=9_241_705_984,
    layers=42,
    attention_heads=16,
    kv_heads=8,
    head_dim=256,
    embedding=3584,
    vocab=256000,
    context=8192,
    sliding_window=4096,
    sliding_window_layers=21,
)


def test_mistral_7b_32k_f16_kv_is_exactly_4_gib() -> None:
    # 2 (K, V) x 32 layers x 32768 tokens x 8 KV heads x 128 dims x 2 bytes
    assert kv_cache_bytes(MISTRAL_7B, 32768, 1, "f16") == 4 * GIB


def test_parallel_requests_each_get_the_context() -> None:
    assert kv_cache_bytes(MISTRAL_7B, 8192, 4, "f16") == kv_cache_bytes(MISTRAL_7B, 32768, 1, "f16")


@pytest.mark.parametrize(("kv_type", "expected"), [("q8_0", 2176 * MIB), ("q4_0", 1152 * MIB)])
def test_quantised_kv_uses_ggml_block_sizes(kv_type: str, expected: int) -> None:
    # q8_0: 34-byte blocks of 32 values; q4_0: 18-byte blocks of 32 values
    assert kv_cache_bytes(MISTRAL_7B, 32768, 1, kv_type) == expected  # type: ignore[arg-type]


def test_sliding_window_layers_keep_only_the_window() -> None:
    # 21 global layers x 8192 tokens + 21 local layers x (4096 window + 512 batch) tokens,
    # each token-layer 2 x 8 x 256 x 2 bytes
    expected = (21 * 8192 + 21 * 4608) * 2 * 8 * 256 * 2
    assert kv_cache_bytes(GEMMA2_9B, 8192, 1, "f16") == expected == 2100 * MIB


def test_short_context_is_not_cut_by_the_window() -> None:
    assert kv_cache_bytes(GEMMA2_9B, 2048, 1, "f16") == 42 * 2048 * 2 * 8 * 256 * 2


def test_weights_from_the_file_size_or_bits_per_weight() -> None:
    assert weights_bytes(MISTRAL_7B, "q4_k_m") == 4_372_812_000
    assert weights_bytes(MISTRAL_7B, "Q8_0") == int(7_248_023_552 * 8.5 / 8)
    with pytest.raises(ValueError, match="unknown quantisation 'IQ9'"):
        weights_bytes(MISTRAL_7B, "IQ9")


def test_compute_graph_follows_ollamas_llama_estimate() -> None:
    # 4 x 512 x (1 + 4 x 4096 + 8192 x (1 + 32)) bytes: the attention scores dominate
    assert compute_bytes(MISTRAL_7B, 8192, 1, flash_attention=False) == 4 * 512 * (
        1 + 4 * 4096 + 8192 * 33
    )
    # with flash attention only the output logits remain: 4 x 512 x (4096 + 32768)
    assert compute_bytes(MISTRAL_7B, 8192, 1, flash_attention=True) == 4 * 512 * (4096 + 32768)


def test_a_quantised_kv_cache_implies_flash_attention() -> None:
    f16 = model_memory(MISTRAL_7B, "Q4_K_M", 8192, 1, "f16")
    q8 = model_memory(MISTRAL_7B, "Q4_K_M", 8192, 1, "q8_0")
    assert (
        q8.compute_bytes
        == compute_bytes(MISTRAL_7B, 8192, 1, flash_attention=True)
        < f16.compute_bytes
    )
