"""The inventory's fit plan: every model-serving service's models placed on its GPUs.

A service on a physical host uses the host-mode GPUs it names (or all of them); a service in
a guest uses the GPUs passed or shared to that guest. Models of one service are placed one
after another and stay resident together (Ollama keeps up to 3 per GPU loaded), so each sees
what the earlier ones left free.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from labsmith.inventory.lab import Guest, Lab, PhysicalHost
from labsmith.inventory.model import ModelRef, Service
from labsmith.sizing.catalog import ModelSpec, UnknownModelError, find_model
from labsmith.sizing.gpu_support import Runtime, gpu_support
from labsmith.sizing.memory import Memory, model_memory
from labsmith.sizing.ollama import DEFAULT_OLLAMA_VERSION
from labsmith.sizing.placement import GpuSlot, Placement, place_ollama, place_vllm
from labsmith.sizing.vllm import GPU_MEMORY_UTILIZATION, VllmSettings

if TYPE_CHECKING:
    # Only fit --snapshots reads probes: validate, which sizes every lab, never imports
    # the snapshot parsers.
    from labsmith.facts.snapshot import HostFacts

MODEL_SERVERS: dict[str, Runtime] = {"ollama": "ollama", "llama_cpp": "ollama", "vllm": "vllm"}
# What most Ollama library tags pull (older ones, e.g. mistral:7b, pull Q4_0).
DEFAULT_QUANT = "Q4_K_M"


@dataclass(frozen=True)
class RuntimeOptions:
    """The service's runtime settings that change what fits."""

    ollama_version: str = DEFAULT_OLLAMA_VERSION
    vllm: VllmSettings = field(default_factory=VllmSettings)

    @classmethod
    def of(cls, service: Service) -> "RuntimeOptions":
        return cls(
            ollama_version=service.ollama_version or DEFAULT_OLLAMA_VERSION,
            vllm=VllmSettings(
                gpu_memory_utilization=service.gpu_memory_utilization or GPU_MEMORY_UTILIZATION,
                max_num_batched_tokens=service.max_num_batched_tokens,
            ),
        )


@dataclass(frozen=True)
class ModelFit:
    owner: str  # inventory host or guest running the service
    service_index: int
    service: str
    model_index: int
    model: ModelRef
    placement: Placement | None  # None when the model is unknown
    problem: str = ""


def plan_lab(
    lab: Lab, only: str | None = None, reserved: dict[tuple[str, str], int] | None = None
) -> list[ModelFit]:
    """``reserved`` maps (physical host, GPU name) to VRAM already taken, e.g. by a desktop
    on a display GPU as a probe snapshot showed it."""
    fits: list[ModelFit] = []
    for owner in lab.managed():
        if only is not None and only not in (owner.name, _node_name(owner)):
            continue
        gpus = _gpu_slots(owner, lab, reserved or {})
        if gpus is None:
            continue  # its GPUs cannot be known: the inventory's own findings say why
        memory_free = (
            owner.spec.memory if isinstance(owner, PhysicalHost) else owner.spec.guest.memory
        )
        for index, service in enumerate(owner.spec.services):
            if service.kind in MODEL_SERVERS and set(service.gpus) <= set(gpus):
                fits.extend(_plan_service(owner.name, index, service, gpus, memory_free))
    return fits


def _node_name(owner: PhysicalHost | Guest) -> str:
    return owner.name if isinstance(owner, PhysicalHost) else owner.spec.guest.node


def _gpu_slots(
    owner: PhysicalHost | Guest, lab: Lab, reserved: dict[tuple[str, str], int]
) -> dict[str, GpuSlot] | None:
    """The GPUs the owner's services may use, or None when the inventory leaves them unknown
    (a guest on an unknown node, or given a GPU its node does not have or cannot give it:
    VMs take passthrough GPUs, containers share host-mode ones)."""
    if isinstance(owner, PhysicalHost):
        host, names, mode = owner, {g.name for g in owner.spec.gpus if g.mode == "host"}, "host"
    else:
        node = lab.hosts.get(owner.spec.guest.node)
        if node is None or node.spec.kind != "proxmox":
            return None
        host, names = node, set(owner.spec.guest.gpus)
        mode = "passthrough" if owner.spec.guest.type == "qemu" else "host"
    slots = {
        gpu.name: GpuSlot(
            gpu.name, gpu.vram, reserved.get((host.name, gpu.name), 0), gpu.vendor_device
        )
        for gpu in host.spec.gpus
        if gpu.name in names and gpu.mode == mode
    }
    return slots if len(slots) == len(names) else None


def _plan_service(
    owner: str, index: int, service: Service, gpus: dict[str, GpuSlot], memory_free: int
) -> Iterator[ModelFit]:
    slots = [gpus[name] for name in (service.gpus or list(gpus)) if name in gpus]
    options = RuntimeOptions.of(service)
    for model_index, model in enumerate(service.models):
        fit = fit_model(model, slots, MODEL_SERVERS[service.kind], memory_free, options)
        if isinstance(fit, str):
            yield ModelFit(owner, index, service.name, model_index, model, None, fit)
            continue
        yield ModelFit(owner, index, service.name, model_index, model, fit)
        taken = {share.gpu: share.total_bytes for share in fit.devices}
        slots = [
            replace(slot, taken_bytes=slot.taken_bytes + taken.get(slot.name, 0)) for slot in slots
        ]
        memory_free -= fit.cpu_bytes


def fit_model(
    model: ModelRef,
    gpus: list[GpuSlot],
    runtime: Runtime,
    cpu_bytes_free: int | None,
    options: RuntimeOptions = RuntimeOptions(),
) -> Placement | str:
    """The placement, or why the model cannot be sized."""
    try:
        spec = find_model(model.name)
    except UnknownModelError:
        return (
            f"{model.name} is not in labsmith's model catalog; size it from its GGUF file "
            "with labsmith fit --gguf FILE"
        )
    try:
        return place_model(
            spec, model.quant or DEFAULT_QUANT, model, gpus, runtime, cpu_bytes_free, options
        )
    except ValueError as error:
        return str(error)


def place_model(
    spec: ModelSpec,
    quant: str,
    model: ModelRef,
    gpus: list[GpuSlot],
    runtime: Runtime,
    cpu_bytes_free: int | None,
    options: RuntimeOptions = RuntimeOptions(),
) -> Placement:
    """Size ``spec`` at ``quant`` with the model's settings and place it as ``runtime`` does."""
    memory = model_memory(spec, quant, model.context, model.parallel, model.kv_cache)
    unusable = _unusable_gpu(spec, memory, gpus, runtime)
    if unusable is not None:
        return unusable
    placement = _place(spec, memory, model, gpus, runtime, cpu_bytes_free, options)
    # How the runtime reaches a GPU, where it needs something: an override, a fallback backend.
    notes = [gpu_support(runtime, gpu.name, gpu.vendor_device).note for gpu in gpus]
    how = "; ".join(f"{gpu.name}: {note}" for gpu, note in zip(gpus, notes, strict=True) if note)
    return replace(placement, reason=f"{placement.reason} ({how})") if how else placement


def _place(
    spec: ModelSpec,
    memory: Memory,
    model: ModelRef,
    gpus: list[GpuSlot],
    runtime: Runtime,
    cpu_bytes_free: int | None,
    options: RuntimeOptions,
) -> Placement:
    if runtime == "vllm":
        return place_vllm(
            spec,
            memory,
            gpus,
            context=model.context,
            parallel=model.parallel,
            kv_type=model.kv_cache,
            settings=options.vllm,
        )
    return place_ollama(
        spec,
        memory,
        gpus,
        cpu_bytes_free,
        context=model.context,
        parallel=model.parallel,
        version=options.ollama_version,
    )


def _unusable_gpu(
    spec: ModelSpec, memory: Memory, gpus: list[GpuSlot], runtime: Runtime
) -> Placement | None:
    """A placement refused because the runtime has no backend for one of the GPUs."""
    for gpu in gpus:
        support = gpu_support(runtime, gpu.name, gpu.vendor_device)
        if not support.usable:
            return Placement(
                spec.name,
                runtime,
                memory,
                (),
                0,
                0,
                "unsupported_gpu",
                f"{support.note}: {runtime} cannot start on it",
                fix=support.fix,
            )
    return None


def display_reservations(lab: Lab, probed: Mapping[str, "HostFacts"]) -> dict[tuple[str, str], int]:
    """VRAM models cannot have, per GPU, from each host's probed snapshot: what the driver
    reserves for itself (nvidia-smi's FB ``Reserved``; since R525 its ``Total`` is
    ``Reserved + Used + Free``), plus what the console or desktop holds on a GPU with a
    display active. A monitor cable alone (``display_attached``) holds nothing."""
    reserved: dict[tuple[str, str], int] = {}
    for host in lab.hosts.values():
        facts = probed.get(host.name)
        smi = facts.nvidia_smi if facts else None
        by_address = {gpu.pci_address: gpu for gpu in smi.gpus} if smi else {}
        for gpu in host.spec.gpus:
            seen = by_address.get(gpu.pci)
            if seen is None:
                continue
            held = (seen.reserved_bytes or 0) + (
                (seen.vram_used_bytes or 0) if seen.display_active else 0
            )
            if held:
                reserved[(host.name, gpu.name)] = held
    return reserved
