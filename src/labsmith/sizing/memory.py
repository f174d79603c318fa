"""The memory a model needs: weights, KV cache and compute buffers, each term documented.

Constants and where they come from:

- KV cache element sizes are ggml's block sizes (ggml-common.h): f16 is 2 bytes; ``q8_0``
  stores 32 values in a 34-byte block (an f16 scale + 32 int8); ``q4_0`` stores 32 values in
  an 18-byte block (an f16 scale + 16 bytes of nibbles).
- KV cache = 2 (K and V) x layers x cached tokens x KV heads x head dim x bytes per element.
  Ollama gives every parallel request its own ``num_ctx`` tokens, so the cached tokens are
  context x parallel. Sliding-window layers (Gemma 2/3) keep only the window per sequence plus
  one micro-batch, as llama.cpp's iSWA cache does (``n_swa * n_seq_max + n_ubatch``).
- Weights are the GGUF file's size for the chosen quantisation (the tensors are most of it);
  without a known file, parameters x the quantisation's bits per weight.
- The compute graph follows Ollama's estimate for llama-style models (llm/memory.go):
  the larger of 4 x batch x (1 + 4 x embedding + cached tokens x (1 + heads)) and
  4 x batch x (embedding + vocab) bytes, with batch 512. The first term is the f32 attention
  score matrix of one micro-batch; flash attention never materialises it, which leaves the
  output logits (the second term). A quantised KV cache needs flash attention (Ollama applies
  OLLAMA_KV_CACHE_TYPE only with it on), so q8_0/q4_0 imply it.
- What a runtime's scheduler reserves on each GPU beyond these (Ollama's 457 MiB minimum,
  llama.cpp's 1 GiB fit margin, vLLM's profiled budget) is the runtime's, in
  ``labsmith.sizing.ollama`` and ``labsmith.sizing.vllm``.
"""

from dataclasses import dataclass
from typing import Literal

from labsmith.sizing.catalog import ModelSpec

KvCacheType = Literal["f16", "q8_0", "q4_0"]

KV_BYTES_PER_ELEMENT: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
# Average bits per weight of llama.cpp's quantisation types, for models without a file size.
BITS_PER_WEIGHT = {
    "Q4_0": 4.55,
    "Q4_K_M": 4.89,
    "Q5_K_M": 5.70,
    "Q6_K": 6.56,
    "Q8_0": 8.50,
    "F16": 16.0,
}
BATCH = 512
# Context x parallel beyond this is no real setting (the longest contexts are ~10M tokens),
# and much beyond it the float arithmetic of the estimate would overflow.
MAX_CACHED_TOKENS = 2**40


@dataclass(frozen=True)
class Memory:
    """What one model instance needs, in bytes, before it is placed on devices."""

    weights_bytes: int
    kv_bytes: int
    compute_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes


def weights_bytes(spec: ModelSpec, quant: str) -> int:
    key = quant.upper()
    if key in spec.files:
        return spec.files[key]
    if key not in BITS_PER_WEIGHT:
        known = ", ".join(sorted(set(spec.files) | set(BITS_PER_WEIGHT)))
        raise ValueError(f"unknown quantisation {quant!r} for {spec.name}; known: {known}")
    return int(spec.parameters * BITS_PER_WEIGHT[key] / 8)


def kv_cache_bytes(spec: ModelSpec, context: int, parallel: int, kv_type: KvCacheType) -> int:
    tokens = context * parallel
    element = KV_BYTES_PER_ELEMENT[kv_type]
    per_token_layer = 2 * spec.kv_heads * spec.head_dim * element
    local_layers = spec.sliding_window_layers or 0
    if spec.sliding_window is None or local_layers == 0:
        return int(spec.layers * tokens * per_token_layer)
    local_tokens = min(tokens, spec.sliding_window * parallel + BATCH)
    global_layers = spec.layers - local_layers
    return int((global_layers * tokens + local_layers * local_tokens) * per_token_layer)


def compute_bytes(spec: ModelSpec, context: int, parallel: int, *, flash_attention: bool) -> int:
    output = 4 * BATCH * (spec.embedding + spec.vocab)
    if flash_attention:
        return output
    tokens = context * parallel
    attention = 4 * BATCH * (1 + 4 * spec.embedding + tokens * (1 + spec.attention_heads))
    return max(attention, output)


def model_memory(
    spec: ModelSpec, quant: str, context: int, parallel: int, kv_type: KvCacheType
) -> Memory:
    if context < 1 or parallel < 1 or context * parallel > MAX_CACHED_TOKENS:
        raise ValueError(
            f"context {context} x parallel {parallel} is no real setting for {spec.name}; "
            f"both must be at least 1 and their product at most {MAX_CACHED_TOKENS:,} tokens"
        )
    return Memory(
        weights_bytes=weights_bytes(spec, quant),
        kv_bytes=kv_cache_bytes(spec, context, parallel, kv_type),
        compute_bytes=compute_bytes(spec, context, parallel, flash_attention=kv_type != "f16"),
    )
