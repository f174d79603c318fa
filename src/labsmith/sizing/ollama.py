"""What Ollama's scheduler charges a GPU (its *estimate*), by Ollama version.

The estimate decides whether a model fits, how many layers each GPU gets and what spills;
what the runner then allocates is the weights and KV cache of its layers plus one compute
buffer per GPU (``memory.compute_bytes``: llama.cpp logs one full-size buffer on every device
of a layer split, e.g. 1335.56 MiB on both GPUs in ggml-org/llama.cpp#11132). The two differ
most on several GPUs, and how depends on the version (github.com/ollama/ollama, read in a
mirror at v0.33.0-rc2):

- before 0.12.11, ``llm/memory.go`` EstimateGPULayers (v0.12.10): each GPU used is charged
  ``MinimumMemory`` (457 MiB, ``ml/device.go``) plus one spare layer (weights + KV of
  ``blk.0``, memory.go "add one layer worth of memory as a buffer") plus the graph from
  ``fs/ggml/ggml.go`` GraphSize. On more than one GPU it charges the *partial-offload* graph
  on every GPU ("multigpu should always use the partial graph size"), which for llama-style
  models includes ``embedding x vocab x 105/128`` for output weights; and the llama formula
  ignores flash attention, so a quantised KV cache does not shrink it. Layers are dealt out
  round-robin (``gpusWithSpace[i % j]``) over the GPUs that still have room.
- 0.12.11 to 0.29 (``llm/server.go`` buildLayout, read at v0.20.0): Ollama's own engine
  reports the graph it really allocated per GPU and the scheduler reserves that graph plus
  ``MinimumMemory``. That engine (``model/models``) runs the architectures of labsmith's
  catalog (llama, qwen2/3, gemma2/3, mistral3, nomic-bert); models left on the llama.cpp
  runner were still charged GraphSize's larger graph, which labsmith does not model here.
- from 0.30.0 (``llm/llama_server.go``, PR ollama/ollama#16031: "use llama-server
  exclusively for GGML models"): llama.cpp's ``--fit`` (default on) projects its real buffers
  and leaves ``--fit-target`` free on every device: 1024 MiB unless LLAMA_ARG_FIT_TARGET is
  set (llama.cpp common/arg.cpp, "target margin per device for --fit ... default: 1024").

All versions still try the fewest GPUs first (``OLLAMA_SCHED_SPREAD`` off, server/sched.go).
"""

import re
from typing import Literal

from labsmith.sizing.catalog import ModelSpec
from labsmith.sizing.memory import BATCH, Memory, compute_bytes
from labsmith.units import MIB

Scheduler = Literal["memory_estimate", "backend_layout", "llama_server_fit"]
# The newest release when this was written (tag v0.32.15; v0.33.0 was at rc2).
DEFAULT_OLLAMA_VERSION = "0.32.15"
MINIMUM_MEMORY_BYTES = 457 * MIB
FIT_TARGET_BYTES = 1024 * MIB
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int]:
    match = _VERSION.match(text.strip())
    if match is None:
        raise ValueError(f"Ollama version {text!r} is not a release number such as 0.12.10")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def scheduler(version: str) -> Scheduler:
    release = parse_version(version)
    if release < (0, 12, 11):
        return "memory_estimate"
    if release < (0, 30, 0):
        return "backend_layout"
    return "llama_server_fit"


def partial_graph_bytes(spec: ModelSpec, context: int, parallel: int) -> int:
    """GraphSize's partial-offload graph for llama-style models (fs/ggml/ggml.go, v0.12.10)."""
    tokens = context * parallel
    embedding, heads = spec.embedding, spec.attention_heads
    batch = min(context, BATCH)
    attention = (
        4 * batch * (1 + embedding + max(tokens, embedding))
        + embedding * embedding * 9 // 16
        + 4 * tokens * (batch * heads + spec.head_dim * spec.kv_heads)
    )
    output = 4 * batch * (embedding + spec.vocab) + embedding * spec.vocab * 105 // 128
    return 4 * batch * embedding + max(attention, output)


def reserve_bytes(
    version: str,
    spec: ModelSpec,
    memory: Memory,
    context: int,
    parallel: int,
    gpus: int,
    *,
    full_offload: bool = True,
) -> int:
    """What the scheduler charges each GPU it uses beyond the weights and KV of its layers;
    ``full_offload`` is False when some layers stay on the CPU."""
    match scheduler(version):
        case "memory_estimate":
            # The llama formula of GraphSize has no flash-attention case; the partial graph
            # applies on several GPUs and whenever layers spill (memory.go).
            if gpus > 1 or not full_offload:
                graph = partial_graph_bytes(spec, context, parallel)
            else:
                graph = compute_bytes(spec, context, parallel, flash_attention=False)
            layer = (memory.weights_bytes + memory.kv_bytes) // spec.layers
            return MINIMUM_MEMORY_BYTES + graph + layer
        case "backend_layout":
            return MINIMUM_MEMORY_BYTES + memory.compute_bytes
        case "llama_server_fit":
            return FIT_TARGET_BYTES + memory.compute_bytes
