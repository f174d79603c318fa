"""vLLM's memory budget per GPU, and the longest context its KV cache can hold.

vLLM's worker (``vllm/v1/worker/gpu_worker.py`` determine_available_memory; read at
vllm-project/vllm 0012cf691b7e69423244d2b1405f4b6832156e19) takes ``gpu_memory_utilization``
(default 0.9, ``vllm/config/cache.py``) of the GPU's *total* memory and subtracts the peak it
measures while profiling one dummy batch: the weights, PyTorch's activation peak (which grows
with ``max_num_batched_tokens``), and memory allocated outside PyTorch (CUDA context, NCCL
buffers; from v0.21.0 also the CUDA graphs it will capture, gpu_worker.py: "CUDA graph memory
profiling is enabled (default since v0.21.0)"). What is left becomes the KV cache, in blocks
of 16 tokens, and must hold one request of ``max_model_len``; otherwise vLLM refuses to start
("The model's max seq len (N) is larger than the maximum number of tokens that can be stored
in KV cache (M)"; newer releases add "the estimated maximum model length is M").

Terms vLLM measures and labsmith estimates (checked against vLLM's own logs in
``tests/fixtures/sizing/vllm_measured.yml``):

- activation peak: per token of the profiled batch, the MLP's gate/up and activated outputs
  (3 x FFN width), the QKV projection and two hidden-state copies, in the model dtype; plus
  the f32 logits of the sampler's dummy run (``max_num_seqs`` x vocab x 4 bytes). The FFN
  width is not in the catalog; it follows from the parameter count (what is left of a
  layer's parameters after attention and embeddings, over 3 x embedding), and for
  mixture-of-experts models only the experts a token uses count. It does not shrink with
  tensor parallelism. Within 25% of the logged peaks.
- non-torch memory: 0.35 GiB per GPU (logged 0.35 on an RTX 3090, vllm#10517; 0.16 on an
  H100, vllm#12126; 0.20 per rank at TP 4 on 24 GB cards, vllm#14447), plus 0.2 GiB of CUDA
  graphs (0.17 GiB logged, github.com/noonghunna/club-3090/issues/127).
- ``max_num_batched_tokens`` and ``max_num_seqs`` default, for ``vllm serve``, to 2048 and
  256, or 8192 and 1024 on GPUs of 70 GiB or more other than the A100
  (``vllm/engine/arg_utils.py`` get_batch_defaults).
"""

from dataclasses import dataclass

from labsmith.sizing.catalog import ModelSpec
from labsmith.sizing.memory import KvCacheType
from labsmith.units import GIB

GPU_MEMORY_UTILIZATION = 0.9
BLOCK_SIZE = 16
NON_TORCH_BYTES = int(0.35 * GIB)
CUDA_GRAPH_BYTES = int(0.2 * GIB)
LARGE_GPU_BYTES = 70 * GIB
DTYPE_BYTES = 2  # bf16/fp16 weights and activations
# vLLM's KV cache dtypes as labsmith's kv_cache names them: "auto" is the model dtype,
# fp8 the one 8-bit cache; vLLM has no 4-bit KV cache.
KV_DTYPE_BYTES: dict[KvCacheType, int] = {"f16": 2, "q8_0": 1}


@dataclass(frozen=True)
class VllmSettings:
    gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION
    max_num_batched_tokens: int | None = None  # None: vLLM's default for the GPU
    max_num_seqs: int | None = None
    non_torch_bytes: int = NON_TORCH_BYTES
    cuda_graph_bytes: int = CUDA_GRAPH_BYTES


@dataclass(frozen=True)
class VllmBudget:
    """One GPU's share, in bytes, as vLLM's profiler splits it."""

    usable_bytes: int  # gpu_memory_utilization x total
    weights_bytes: int
    activation_bytes: int
    non_torch_bytes: int
    kv_cache_bytes: int  # what is left: vLLM allocates all of it
    kv_bytes_per_token: int
    max_tokens: int  # blocks x block size: the KV cache's capacity

    @property
    def overhead_bytes(self) -> int:
        return self.activation_bytes + self.non_torch_bytes


def batch_defaults(vram_bytes: int) -> tuple[int, int]:
    """``vllm serve``'s max_num_batched_tokens and max_num_seqs for a GPU of this size."""
    return (8192, 1024) if vram_bytes >= LARGE_GPU_BYTES else (2048, 256)


def ffn_width(spec: ModelSpec) -> int:
    """The MLP width per token, from the parameter count (config.json's intermediate_size)."""
    attention = spec.embedding * spec.head_dim * (2 * spec.attention_heads + 2 * spec.kv_heads)
    embeddings = spec.vocab * spec.embedding
    # Small models share the input embedding with the output head (tie_word_embeddings:
    # Qwen2.5 up to 3B, Llama 3.2, Gemma), where it is over a tenth of the parameters.
    if embeddings * 10 < spec.parameters:
        embeddings *= 2
    per_layer = max(0, (spec.parameters - embeddings) // spec.layers - attention)
    width = per_layer // (3 * spec.embedding)
    if spec.experts and spec.experts_used:
        width = width * spec.experts_used // spec.experts
    return width


def activation_bytes(spec: ModelSpec, batched_tokens: int, max_num_seqs: int) -> int:
    """The same on every rank whatever the TP size: vLLM logged 1.26 GiB at TP 1 and TP 2
    alike (vllm-project/vllm#10511)."""
    qkv = spec.head_dim * (spec.attention_heads + 2 * spec.kv_heads)
    per_token = DTYPE_BYTES * (3 * ffn_width(spec) + qkv + 2 * spec.embedding)
    logits = 4 * max_num_seqs * spec.vocab
    return batched_tokens * per_token + logits


def kv_bytes_per_token(spec: ModelSpec, kv_type: KvCacheType, tp: int) -> int:
    if kv_type not in KV_DTYPE_BYTES:
        raise ValueError(
            f"vLLM has no {kv_type} KV cache; use kv_cache f16 (vLLM's auto) or q8_0 (fp8)"
        )
    # Each rank keeps kv_heads / tp heads, at least one (config/model.py get_num_kv_heads).
    heads = max(1, spec.kv_heads // tp)
    return 2 * spec.layers * heads * spec.head_dim * KV_DTYPE_BYTES[kv_type]


def budget(
    spec: ModelSpec,
    weights_bytes: int,
    vram_bytes: int,
    kv_type: KvCacheType,
    tp: int,
    settings: VllmSettings | None = None,
) -> VllmBudget:
    settings = settings or VllmSettings()
    default_tokens, default_seqs = batch_defaults(vram_bytes)
    tokens = settings.max_num_batched_tokens or default_tokens
    seqs = min(settings.max_num_seqs or default_seqs, tokens)
    usable = int(vram_bytes * settings.gpu_memory_utilization)
    weights = weights_bytes // tp
    activation = activation_bytes(spec, tokens, seqs)
    non_torch = settings.non_torch_bytes + settings.cuda_graph_bytes
    kv_cache = max(0, usable - weights - activation - non_torch)
    per_token = kv_bytes_per_token(spec, kv_type, tp)
    max_tokens = kv_cache // (per_token * BLOCK_SIZE) * BLOCK_SIZE
    return VllmBudget(usable, weights, activation, non_torch, kv_cache, per_token, max_tokens)
