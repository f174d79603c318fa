"""Place a model on GPUs the way its runtime does, and judge the result.

Ollama (llama.cpp) splits a model by layers. With ``OLLAMA_SCHED_SPREAD`` off (its default)
it loads a model onto as few GPUs as hold it, the emptiest first, and splits the layers
across them; what does not fit runs on the CPU ("spills"), which works but slows generation
by an order of magnitude. Whether a GPU "holds" layers is decided by the scheduler's
estimate, which depends on the Ollama version (``labsmith.sizing.ollama``); what a GPU then
really holds is the weights and KV cache of its layers plus one compute buffer. Both are
reported: ``DeviceShare.total_bytes`` is the allocation, ``estimate_bytes`` the charge.

vLLM splits every layer across GPUs (tensor parallel): the TP size must divide the attention
head count and every GPU gets an equal share. It takes ``gpu_memory_utilization`` of each GPU
and turns what its profiler leaves into KV cache (``labsmith.sizing.vllm``). It never spills:
a model whose KV cache cannot hold one request of its context does not start.
"""

from dataclasses import dataclass
from typing import Literal

from labsmith.sizing.catalog import ModelSpec
from labsmith.sizing.gpu_support import Runtime
from labsmith.sizing.memory import KvCacheType, Memory
from labsmith.sizing.ollama import DEFAULT_OLLAMA_VERSION, reserve_bytes, scheduler
from labsmith.sizing.vllm import VllmBudget, VllmSettings, budget
from labsmith.units import GIB

Verdict = Literal["fits", "tight", "spills", "does_not_fit", "unsupported_gpu"]
TIGHT_HEADROOM = 0.10  # under 10% of a GPU left free: one more request or context may not fit


@dataclass(frozen=True)
class GpuSlot:
    """A GPU as the planner sees it: its VRAM and what is already taken on it."""

    name: str
    vram_bytes: int
    taken_bytes: int = 0  # a display's framebuffer, or models placed before this one
    vendor_device: str = ""  # PCI id, e.g. 10de:2504: tells which runtimes can use it

    @property
    def free_bytes(self) -> int:
        return self.vram_bytes - self.taken_bytes


@dataclass(frozen=True)
class DeviceShare:
    gpu: str
    layers: int
    weights_bytes: int
    kv_bytes: int
    overhead_bytes: int  # what the runtime allocates beside weights and KV (compute buffers)
    vram_bytes: int
    free_before_bytes: int
    # What the runtime's scheduler charges this GPU when deciding the split (Ollama), when
    # it differs from the allocation; None where they are the same thing (vLLM).
    estimate_bytes: int | None = None

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.overhead_bytes

    @property
    def headroom_bytes(self) -> int:
        return self.free_before_bytes - self.total_bytes


@dataclass(frozen=True)
class Placement:
    model: str
    runtime: Runtime
    memory: Memory
    devices: tuple[DeviceShare, ...]
    cpu_layers: int
    cpu_bytes: int
    verdict: Verdict
    reason: str
    max_context: int | None = None  # vLLM: the longest context its KV cache holds
    fix: str = ""  # a remedy specific to this placement, e.g. another backend

    @property
    def fits(self) -> bool:
        return self.verdict in ("fits", "tight")

    @property
    def overhead_bytes(self) -> int:
        return sum(device.overhead_bytes for device in self.devices)

    @property
    def total_bytes(self) -> int:
        return self.memory.weights_bytes + self.memory.kv_bytes + self.overhead_bytes

    @property
    def estimate_bytes(self) -> int | None:
        estimates = [d.estimate_bytes for d in self.devices if d.estimate_bytes is not None]
        if not estimates:
            return None
        return sum(estimates) + self.cpu_bytes


def place_ollama(
    spec: ModelSpec,
    memory: Memory,
    gpus: list[GpuSlot],
    cpu_bytes_free: int | None,
    *,
    context: int,
    parallel: int,
    version: str = DEFAULT_OLLAMA_VERSION,
) -> Placement:
    layers = spec.layers
    per_layer = (memory.weights_bytes + memory.kv_bytes) / layers
    ranked = sorted(gpus, key=lambda gpu: gpu.free_bytes, reverse=True)
    for count in range(1, len(ranked) + 1):
        chosen = ranked[:count]
        reserve = reserve_bytes(version, spec, memory, context, parallel, count)
        capacity = [_layer_capacity(gpu, reserve, per_layer) for gpu in chosen]
        if sum(capacity) >= layers:
            return _layer_split(
                spec, memory, chosen, capacity, layers, cpu_bytes_free, reserve, version
            )
    reserve = reserve_bytes(
        version, spec, memory, context, parallel, len(ranked), full_offload=False
    )
    capacity = [_layer_capacity(gpu, reserve, per_layer) for gpu in ranked]
    used = [(gpu, cap) for gpu, cap in zip(ranked, capacity, strict=True) if cap > 0]
    on_gpu = sum(cap for _, cap in used)
    return _layer_split(
        spec,
        memory,
        [g for g, _ in used],
        [c for _, c in used],
        on_gpu,
        cpu_bytes_free,
        reserve,
        version,
    )


def _layer_capacity(gpu: GpuSlot, reserve: int, per_layer: float) -> int:
    usable = gpu.free_bytes - reserve
    return max(0, int(usable // per_layer)) if per_layer > 0 else 0


def _deal_round_robin(layers: int, capacity: list[int]) -> list[int]:
    """memory.go (before 0.12.11) hands layer i to ``gpusWithSpace[i % j]`` and drops a GPU
    from the rotation once it is full."""
    counts = [0] * len(capacity)
    left = layers
    while left:
        open_gpus = [i for i, cap in enumerate(capacity) if counts[i] < cap]
        if not open_gpus:
            break
        for i in open_gpus[:left]:
            counts[i] += 1
        left -= min(left, len(open_gpus))
    return counts


def _deal_proportionally(layers: int, capacity: list[int]) -> list[int]:
    """Newer schedulers and llama.cpp's default tensor split give each GPU layers in
    proportion to what it can hold."""
    counts: list[int] = []
    left = layers
    total_capacity = sum(capacity) or 1
    for index, cap in enumerate(capacity):
        is_last = index == len(capacity) - 1
        count = left if is_last else min(cap, round(layers * cap / total_capacity), left)
        counts.append(count)
        left -= count
    return counts


def _layer_split(
    spec: ModelSpec,
    memory: Memory,
    gpus: list[GpuSlot],
    capacity: list[int],
    gpu_layers: int,
    cpu_bytes_free: int | None,
    reserve: int,
    version: str,
) -> Placement:
    """Deal ``gpu_layers`` out over ``gpus`` as the version's scheduler does."""
    layers = spec.layers
    deal = _deal_round_robin if scheduler(version) == "memory_estimate" else _deal_proportionally
    shares: list[DeviceShare] = []
    for gpu, count in zip(gpus, deal(gpu_layers, capacity), strict=True):
        weights = int(memory.weights_bytes * count / layers)
        kv = int(memory.kv_bytes * count / layers)
        shares.append(
            DeviceShare(
                gpu=gpu.name,
                layers=count,
                weights_bytes=weights,
                kv_bytes=kv,
                overhead_bytes=memory.compute_bytes,
                vram_bytes=gpu.vram_bytes,
                free_before_bytes=gpu.free_bytes,
                estimate_bytes=weights + kv + reserve,
            )
        )
    cpu_layers = layers - gpu_layers
    cpu_bytes = int((memory.weights_bytes + memory.kv_bytes) * cpu_layers / layers)
    verdict, reason = _judge_layers(spec, shares, cpu_layers, cpu_bytes, cpu_bytes_free)
    return Placement(
        spec.name, "ollama", memory, tuple(shares), cpu_layers, cpu_bytes, verdict, reason
    )


def _judge_layers(
    spec: ModelSpec,
    shares: list[DeviceShare],
    cpu_layers: int,
    cpu_bytes: int,
    cpu_bytes_free: int | None,
) -> tuple[Verdict, str]:
    if cpu_layers:
        if cpu_bytes_free is not None and cpu_bytes > cpu_bytes_free:
            return "does_not_fit", (
                f"{cpu_layers} of {spec.layers} layers do not fit on the GPUs and the "
                "remaining memory cannot hold them either"
            )
        return "spills", (
            f"{cpu_layers} of {spec.layers} layers run on the CPU: expect generation several "
            "times slower; lower the context or parallel requests, pick a smaller quantisation, "
            "or add VRAM"
        )
    tightest = min(shares, key=lambda share: share.headroom_bytes / share.vram_bytes)
    if tightest.headroom_bytes < TIGHT_HEADROOM * tightest.vram_bytes:
        return "tight", f"under 10% of {tightest.gpu}'s VRAM stays free"
    if len(shares) == 1:
        return "fits", f"all {spec.layers} layers on {shares[0].gpu}"
    where = ", ".join(f"{share.gpu} ({share.layers})" for share in shares)
    return "fits", f"all {spec.layers} layers, split {where}"


def place_vllm(
    spec: ModelSpec,
    memory: Memory,
    gpus: list[GpuSlot],
    *,
    context: int,
    parallel: int,
    kv_type: KvCacheType,
    settings: VllmSettings | None = None,
) -> Placement:
    size = len(gpus)
    if size == 0 or spec.attention_heads % size:
        sizes = ", ".join(str(n) for n in _divisors(spec.attention_heads, 8))
        reason = (
            f"tensor parallel size {size} does not divide the {spec.attention_heads} attention "
            f"heads of {spec.name}; use {sizes} GPUs"
        )
        return _refused(spec, memory, reason)
    if context > spec.context:
        reason = (
            f"max_model_len {context} is longer than {spec.name}'s {spec.context} "
            "(max_position_embeddings); vLLM refuses it: lower the context"
        )
        return _refused(spec, memory, reason)
    # vLLM sizes every rank for the smallest GPU.
    smallest = min(gpus, key=lambda gpu: gpu.vram_bytes)
    settings = settings or VllmSettings()
    share = budget(spec, memory.weights_bytes, smallest.vram_bytes, kv_type, size, settings)
    shares = tuple(
        DeviceShare(
            gpu=gpu.name,
            layers=spec.layers,
            weights_bytes=share.weights_bytes,
            kv_bytes=share.kv_cache_bytes,
            overhead_bytes=share.overhead_bytes,
            vram_bytes=gpu.vram_bytes,
            free_before_bytes=gpu.free_bytes,
        )
        for gpu in gpus
    )
    allocated = Memory(
        weights_bytes=memory.weights_bytes,
        kv_bytes=share.kv_cache_bytes * size,
        compute_bytes=share.overhead_bytes * size,
    )
    verdict, reason = _judge_vllm(spec, gpus, share, context, parallel, settings)
    max_context = min(share.max_tokens, spec.context)
    return Placement(
        spec.name, "vllm", allocated, shares, 0, 0, verdict, reason, max_context=max_context
    )


def _refused(spec: ModelSpec, memory: Memory, reason: str) -> Placement:
    return Placement(spec.name, "vllm", memory, (), 0, 0, "does_not_fit", reason)


def _judge_vllm(
    spec: ModelSpec,
    gpus: list[GpuSlot],
    share: VllmBudget,
    context: int,
    parallel: int,
    settings: VllmSettings,
) -> tuple[Verdict, str]:
    utilization = settings.gpu_memory_utilization
    crowded = [gpu for gpu in gpus if gpu.free_bytes < int(utilization * gpu.vram_bytes)]
    if crowded:
        gpu = crowded[0]
        return "does_not_fit", (
            f"vLLM wants {utilization:.2f} of {gpu.name} free at start "
            f"({utilization * gpu.vram_bytes / GIB:.1f} GiB) but only "
            f"{gpu.free_bytes / GIB:.1f} GiB is: move the other models or lower "
            "gpu_memory_utilization"
        )
    if share.max_tokens < context:
        if share.max_tokens == 0:
            return "does_not_fit", (
                f"weights, activations and CUDA buffers take "
                f"{(share.weights_bytes + share.overhead_bytes) / GIB:.1f} GiB of the "
                f"{share.usable_bytes / GIB:.1f} GiB vLLM may use per GPU: nothing is left "
                "for the KV cache"
            )
        return "does_not_fit", (
            f"the model's max seq len ({context}) is larger than the maximum number of tokens "
            f"that can be stored in KV cache ({share.max_tokens}); the largest context that "
            f"fits is {share.max_tokens}"
        )
    at_once = share.max_tokens // context
    prefix = f"tensor parallel {len(gpus)}: " if len(gpus) > 1 else ""
    if at_once < parallel:
        return "tight", (
            f"{prefix}the KV cache holds {share.max_tokens} tokens: {at_once} request(s) of "
            f"{context} at once, fewer than parallel {parallel}"
        )
    return "fits", (
        f"{prefix}the KV cache holds {share.max_tokens} tokens, "
        f"{share.max_tokens / context:.1f}x a {context}-token request"
    )


def _divisors(number: int, most: int) -> list[int]:
    return [n for n in range(1, most + 1) if number % n == 0]
