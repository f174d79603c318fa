"""Placement the way Ollama and vLLM place models, on the example labs' cards."""

from labsmith.sizing.catalog import ModelSpec
from labsmith.sizing.memory import model_memory
from labsmith.sizing.ollama import FIT_TARGET_BYTES, MINIMUM_MEMORY_BYTES
from labsmith.sizing.placement import GpuSlot, place_ollama, place_vllm
from labsmith.units import MIB
from tests.unit.test_sizing_memory import MISTRAL_7B

GIB = 1024**3
# Llama 3.1 70B (config.json): 80 layers, 64 heads, 8 KV heads, head dim 128.
LLAMA_70B = ModelSpec(
    name="llama3.1:70b",
    family="llama",
    parameters=70_553_706_496,
    layers=80,
    attention_heads=64,
    kv_heads=8,
    head_dim=128,
    embedding=8192,
    vocab=128256,
    context=131072,
    files={"Q4_K_M": 42_520_395_584},
)
# A 32-head model: Llama 3.1 8B.
LLAMA_8B = ModelSpec(
    name="llama3.1:8b",
    family="llama",
    parameters=8_030_261_248,
    layers=32,
    attention_heads=32,
    kv_heads=8,
    head_dim=128,
    embedding=4096,
    vocab=128256,
    context=131072,
    files={"Q4_K_M": 4_920_734_016},
)


def test_70b_q4_k_m_does_not_fit_one_24_gb_card_and_spills() -> None:
    memory = model_memory(LLAMA_70B, "Q4_K_M", 8192, 1, "f16")
    placement = place_ollama(
        LLAMA_70B,
        memory,
        [GpuSlot("rtx4090", 24 * GIB)],
        cpu_bytes_free=256 * GIB,
        context=8192,
        parallel=1,
    )
    assert not placement.fits and placement.verdict == "spills"
    [device] = placement.devices
    assert 0 < device.layers < 80 and placement.cpu_layers == 80 - device.layers
    assert device.total_bytes <= 24 * GIB


def test_70b_without_room_in_ram_either_does_not_fit() -> None:
    memory = model_memory(LLAMA_70B, "Q4_K_M", 8192, 1, "f16")
    placement = place_ollama(
        LLAMA_70B,
        memory,
        [GpuSlot("rtx3090", 24 * GIB)],
        cpu_bytes_free=16 * GIB,
        context=8192,
        parallel=1,
    )
    assert placement.verdict == "does_not_fit"


def test_32_head_model_cannot_use_tensor_parallel_across_3_gpus() -> None:
    memory = model_memory(LLAMA_8B, "Q4_K_M", 8192, 1, "f16")
    gpus = [GpuSlot(f"gpu{n}", 12 * GIB) for n in range(3)]
    placement = place_vllm(LLAMA_8B, memory, gpus, context=8192, parallel=1, kv_type="f16")
    assert placement.verdict == "does_not_fit"
    assert "does not divide the 32 attention heads" in placement.reason
    pair = place_vllm(LLAMA_8B, memory, gpus[:2], context=8192, parallel=1, kv_type="f16")
    assert pair.verdict == "fits"


def test_mistral_7b_with_two_8k_requests_fits_the_3060() -> None:
    memory = model_memory(MISTRAL_7B, "Q4_K_M", 8192, 2, "f16")
    placement = place_ollama(
        MISTRAL_7B,
        memory,
        [GpuSlot("rtx3060", 12 * GIB)],
        cpu_bytes_free=None,
        context=8192,
        parallel=2,
    )
    assert placement.verdict == "fits"
    [device] = placement.devices
    assert device.layers == 32
    # It allocates weights, KV cache and one compute buffer; llama.cpp's --fit (Ollama
    # 0.30 and later) also keeps 1 GiB of the card free when it decides.
    assert device.total_bytes == memory.total_bytes
    assert device.estimate_bytes == memory.total_bytes + FIT_TARGET_BYTES


def test_ollama_fills_the_fewest_gpus_emptiest_first() -> None:
    memory = model_memory(MISTRAL_7B, "Q4_K_M", 4096, 1, "f16")
    gpus = [GpuSlot("rtx3070", 8 * GIB), GpuSlot("rtx3060", 12 * GIB)]
    placement = place_ollama(
        MISTRAL_7B, memory, gpus, cpu_bytes_free=None, context=4096, parallel=1
    )
    assert [d.gpu for d in placement.devices] == ["rtx3060"]


def test_a_model_too_big_for_one_gpu_is_split_by_layers_in_proportion() -> None:
    memory = model_memory(LLAMA_70B, "Q4_K_M", 4096, 1, "f16")
    gpus = [GpuSlot("a", 24 * GIB), GpuSlot("b", 24 * GIB)]
    placement = place_ollama(LLAMA_70B, memory, gpus, cpu_bytes_free=None, context=4096, parallel=1)
    assert placement.verdict in ("fits", "tight")
    assert sum(d.layers for d in placement.devices) == 80
    assert abs(placement.devices[0].layers - placement.devices[1].layers) <= 1


def test_little_headroom_is_tight() -> None:
    # Ollama 0.12.11-0.29 reserves 457 MiB beside the graph it measured; a 24 GB card with
    # only that and a quarter GiB more free keeps under 10% of itself free.
    memory = model_memory(MISTRAL_7B, "Q4_K_M", 4096, 1, "f16")
    free = memory.total_bytes + MINIMUM_MEMORY_BYTES + 256 * MIB
    gpu = GpuSlot("g", 24 * GIB, taken_bytes=24 * GIB - free)
    placement = place_ollama(
        MISTRAL_7B, memory, [gpu], cpu_bytes_free=None, context=4096, parallel=1, version="0.20.0"
    )
    assert placement.verdict == "tight"


def test_vllm_starts_only_if_its_kv_cache_holds_one_request() -> None:
    memory = model_memory(MISTRAL_7B, "Q4_K_M", 4096, 1, "f16")
    # 0.9 of this card is the weights and about 1 GiB: vLLM's activations and CUDA buffers
    # take most of that, and the rest holds fewer than 4096 tokens.
    vram = int((memory.weights_bytes + GIB) / 0.9)
    placement = place_vllm(
        MISTRAL_7B, memory, [GpuSlot("g", vram)], context=4096, parallel=1, kv_type="f16"
    )
    assert placement.verdict == "does_not_fit"
    assert placement.max_context is not None and placement.max_context < 4096
    assert f"the largest context that fits is {placement.max_context}" in placement.reason
