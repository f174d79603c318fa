"""Place a model on GPUs the way its runtime does, and judge the result.

Ollama (llama.cpp) splits a model by layers. With ``OLLAMA_SCHED_SPREAD`` off (its default)
it loads a model onto as few GPUs as hold it, the emptiest first, and splits the layers
across them in proportion to their free memory; what does not fit runs on the CPU ("spills"),
which works but slows generation by an order of magnitude. Each GPU used keeps a runtime
reserve and a compute buffer.

vLLM splits every layer across GPUs (tensor parallel): the TP size must divide the attention
head count, every GPU gets an equal share, and it may use ``gpu_memory_utilization`` (0.9) of
each GPU. It never spills: a model that does not fit does not start.
"""

from dataclasses import dataclass
from typing import Literal

from labsmith.sizing.catalog import ModelSpec
from labsmith.sizing.memory import GPU_RUNTIME_BYTES, Memory

Verdict = Literal["fits", "tight", "spills", "does_not_fit"]
Runtime = Literal["ollama", "vllm"]
TIGHT_HEADROOM = 0.10  # under 10% of a GPU left free: one more request or context may not fit
VLLM_GPU_MEMORY_UTILIZATION = 0.9


@dataclass(frozen=True)
class GpuSlot:
    """A GPU as the planner sees it: its VRAM and what is already taken on it."""

    name: str
    vram_bytes: int
    taken_bytes: int = 0  # a display's framebuffer, or models placed before this one

    @property
    def free_bytes(self) -> int:
        return self.vram_bytes - self.taken_bytes


@dataclass(frozen=True)
class DeviceShare:
    gpu: str
    layers: int
    weights_bytes: int
    kv_bytes: int
    overhead_bytes: int  # compute buffer + runtime reserve
    vram_bytes: int
    free_before_bytes: int

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

    @property
    def fits(self) -> bool:
        return self.verdict in ("fits", "tight")

    @property
    def overhead_bytes(self) -> int:
        return sum(device.overhead_bytes for device in self.devices)

    @property
    def total_bytes(self) -> int:
        return self.memory.weights_bytes + self.memory.kv_bytes + self.overhead_bytes


def place_ollama(
    spec: ModelSpec, memory: Memory, gpus: list[GpuSlot], cpu_bytes_free: int | None
) -> Placement:
    layers = spec.layers
    per_layer = (memory.weights_bytes + memory.kv_bytes) / layers
    ranked = sorted(gpus, key=lambda gpu: gpu.free_bytes, reverse=True)
    for count in range(1, len(ranked) + 1):
        chosen = ranked[:count]
        capacity = [_layer_capacity(gpu, memory, per_layer) for gpu in chosen]
        if sum(capacity) >= layers:
            return _layer_split(spec, memory, chosen, capacity, layers, cpu_bytes_free)
    capacity = [_layer_capacity(gpu, memory, per_layer) for gpu in ranked]
    used = [(gpu, cap) for gpu, cap in zip(ranked, capacity, strict=True) if cap > 0]
    on_gpu = sum(cap for _, cap in used)
    return _layer_split(
        spec, memory, [g for g, _ in used], [c for _, c in used], on_gpu, cpu_bytes_free
    )


def _layer_capacity(gpu: GpuSlot, memory: Memory, per_layer: float) -> int:
    usable = gpu.free_bytes - GPU_RUNTIME_BYTES - memory.compute_bytes
    return max(0, int(usable // per_layer)) if per_layer > 0 else 0


def _layer_split(
    spec: ModelSpec,
    memory: Memory,
    gpus: list[GpuSlot],
    capacity: list[int],
    gpu_layers: int,
    cpu_bytes_free: int | None,
) -> Placement:
    """Give each GPU layers in proportion to what it can hold, up to ``gpu_layers``."""
    layers = spec.layers
    shares: list[DeviceShare] = []
    left = gpu_layers
    total_capacity = sum(capacity) or 1
    for index, (gpu, cap) in enumerate(zip(gpus, capacity, strict=True)):
        is_last = index == len(gpus) - 1
        count = left if is_last else min(cap, round(gpu_layers * cap / total_capacity), left)
        left -= count
        shares.append(
            DeviceShare(
                gpu=gpu.name,
                layers=count,
                weights_bytes=int(memory.weights_bytes * count / layers),
                kv_bytes=int(memory.kv_bytes * count / layers),
                overhead_bytes=memory.compute_bytes + GPU_RUNTIME_BYTES,
                vram_bytes=gpu.vram_bytes,
                free_before_bytes=gpu.free_bytes,
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


def place_vllm(spec: ModelSpec, memory: Memory, gpus: list[GpuSlot]) -> Placement:
    size = len(gpus)
    if size == 0 or spec.attention_heads % size:
        sizes = ", ".join(str(n) for n in _divisors(spec.attention_heads, 8))
        reason = (
            f"tensor parallel size {size} does not divide the {spec.attention_heads} attention "
            f"heads of {spec.name}; use {sizes} GPUs"
        )
        return Placement(spec.name, "vllm", memory, (), 0, 0, "does_not_fit", reason)
    # KV heads are split too; with more GPUs than KV heads each GPU keeps a copy of one.
    kv_share = memory.kv_bytes / min(size, spec.kv_heads)
    shares = tuple(
        DeviceShare(
            gpu=gpu.name,
            layers=spec.layers,
            weights_bytes=memory.weights_bytes // size,
            kv_bytes=int(kv_share),
            overhead_bytes=memory.compute_bytes + GPU_RUNTIME_BYTES,
            vram_bytes=gpu.vram_bytes,
            free_before_bytes=min(
                gpu.free_bytes, int(VLLM_GPU_MEMORY_UTILIZATION * gpu.vram_bytes)
            ),
        )
        for gpu in gpus
    )
    short = [share for share in shares if share.headroom_bytes < 0]
    if short:
        reason = (
            f"each GPU needs {short[0].total_bytes / 1024**3:.1f} GiB but vLLM may use "
            f"{short[0].free_before_bytes / 1024**3:.1f} GiB of {short[0].gpu}"
        )
        return Placement(spec.name, "vllm", memory, shares, 0, 0, "does_not_fit", reason)
    verdict, reason = _judge_layers(spec, list(shares), 0, 0, None)
    return Placement(
        spec.name, "vllm", memory, shares, 0, 0, verdict, f"tensor parallel {size}: {reason}"
    )


def _divisors(number: int, most: int) -> list[int]:
    return [n for n in range(1, most + 1) if number % n == 0]
