"""``labsmith fit``: will the models fit in VRAM with their context and parallel requests?"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from labsmith.cli.options import make_console, resolve_inventory
from labsmith.cli.render import redact_json, shown
from labsmith.errors import LabsmithError
from labsmith.facts.snapshot import HostFacts, load_snapshot
from labsmith.inventory.lab import Lab, build_lab
from labsmith.inventory.model import ModelRef
from labsmith.inventory.sources import load_inventory
from labsmith.sizing.fit import (
    ModelFit,
    RuntimeOptions,
    display_reservations,
    fit_model,
    place_model,
    plan_lab,
)
from labsmith.sizing.gguf import spec_from_gguf
from labsmith.sizing.gpu_support import Runtime
from labsmith.sizing.ollama import DEFAULT_OLLAMA_VERSION, parse_version
from labsmith.sizing.placement import GpuSlot, Placement
from labsmith.sizing.vllm import GPU_MEMORY_UTILIZATION, VllmSettings
from labsmith.units import format_size, parse_size

VERDICT_STYLE = {
    "fits": "green",
    "tight": "yellow",
    "spills": "yellow",
    "does_not_fit": "bold red",
    "unsupported_gpu": "bold red",
}
REFUSED = ("does_not_fit", "unsupported_gpu")
# Far beyond any model (the longest contexts are ~10M tokens, servers run tens of requests at
# once), and small enough that the memory arithmetic stays exact.
MAX_CONTEXT = 2**30
MAX_PARALLEL = 2**16


class FitInputError(LabsmithError):
    exit_code = 2


@click.command()
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    help="Plan the inventory's models (default: the bundled example lab).",
)
@click.option("--host", help="Only this host or guest (a node name also selects its guests).")
@click.option(
    "--snapshots",
    type=click.Path(path_type=Path, file_okay=False),
    help="Probe snapshots (labsmith probe --out): VRAM a display GPU's desktop holds.",
)
@click.option("--model", help="Ad hoc: a catalog model, e.g. llama3.1:8b.")
@click.option(
    "--gguf",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Ad hoc: size a model from a local GGUF file's header.",
)
@click.option("--quant", default="Q4_K_M", show_default=True)
@click.option(
    "--ctx", "context", type=click.IntRange(1, MAX_CONTEXT), default=4096, show_default=True
)
@click.option("--parallel", type=click.IntRange(1, MAX_PARALLEL), default=1, show_default=True)
@click.option(
    "--kv-cache", type=click.Choice(["f16", "q8_0", "q4_0"]), default="f16", show_default=True
)
@click.option("--gpu", "gpus", multiple=True, help="A GPU's VRAM: 24 (GiB) or 24G; repeat per GPU.")
@click.option(
    "--runtime", type=click.Choice(["ollama", "vllm"]), default="ollama", show_default=True
)
@click.option(
    "--ollama-version",
    default=DEFAULT_OLLAMA_VERSION,
    show_default=True,
    help="Ollama release whose scheduler to follow (its estimate changed in 0.12.11 and 0.30).",
)
@click.option(
    "--gpu-memory-utilization",
    type=click.FloatRange(0, 1, min_open=True),
    default=GPU_MEMORY_UTILIZATION,
    show_default=True,
    help="vLLM: the share of each GPU it may use.",
)
@click.option(
    "--max-num-batched-tokens",
    type=click.IntRange(1, MAX_CONTEXT),
    help="vLLM: tokens per scheduler step (default: vLLM's for the GPU, 2048 or 8192).",
)
@click.option("--ram", help="Memory left for layers that spill to the CPU, e.g. 64G.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def fit(
    inventory: Path | None,
    host: str | None,
    snapshots: Path | None,
    model: str | None,
    gguf: Path | None,
    quant: str,
    context: int,
    parallel: int,
    kv_cache: str,
    gpus: tuple[str, ...],
    runtime: Runtime,
    ollama_version: str,
    gpu_memory_utilization: float,
    max_num_batched_tokens: int | None,
    ram: str | None,
    as_json: bool,
) -> None:
    """Place models on GPUs the way Ollama or vLLM would and say whether they fit.

    Exit status: 0 everything fits (spilling to the CPU is a warning), 1 a model does not fit,
    2 unusable input.
    """
    if model or gguf:
        ref = ModelRef(
            name=model or str(gguf),
            quant=quant,
            context=context,
            parallel=parallel,
            kv_cache=kv_cache,
        )
        options = _options(ollama_version, gpu_memory_utilization, max_num_batched_tokens)
        slots = [_gpu(text, n) for n, text in enumerate(gpus)]
        placement = _ad_hoc(ref, gguf, slots, runtime, ram, options)
        fits = [ModelFit("ad hoc", 0, runtime, 0, ref, placement)]
    else:
        # The typed lab only: validate's own fit rules would plan everything a second time.
        lab, _ = build_lab(load_inventory(resolve_inventory(inventory)))
        probed = _probed(lab, snapshots) if snapshots else {}
        fits = plan_lab(lab, host, display_reservations(lab, probed))
        topology = tensor_parallel_notes(lab, fits, probed)
    _print(fits, as_json, topology if not (model or gguf) else {})
    if any(f.placement is not None and f.placement.verdict in REFUSED for f in fits):
        raise click.exceptions.Exit(1)


def _options(
    ollama_version: str, gpu_memory_utilization: float, max_num_batched_tokens: int | None
) -> RuntimeOptions:
    try:
        parse_version(ollama_version)
    except ValueError as error:
        raise FitInputError(f"--ollama-version: {error}") from None
    return RuntimeOptions(
        ollama_version=ollama_version,
        vllm=VllmSettings(
            gpu_memory_utilization=gpu_memory_utilization,
            max_num_batched_tokens=max_num_batched_tokens,
        ),
    )


def _gpu(text: str, index: int) -> GpuSlot:
    # A bare number is GiB here (the way GPUs are sold), unlike in the inventory.
    bare = text.strip().replace(".", "", 1).isdigit()
    return GpuSlot(f"gpu{index}", _size("--gpu", text + "G" if bare else text))


def _size(option: str, text: str) -> int:
    try:
        size = parse_size(text)
    except ValueError as error:  # the message says how to write a size, or that it is too large
        raise FitInputError(f"{option} {text}: {error}") from None
    if size <= 0:
        raise FitInputError(f"{option} {text}: must be more than zero, e.g. 24G")
    return size


def _ad_hoc(
    ref: ModelRef,
    gguf: Path | None,
    gpus: list[GpuSlot],
    runtime: Runtime,
    ram: str | None,
    options: RuntimeOptions,
) -> Placement:
    cpu_free = _size("--ram", ram) if ram else None
    if gguf is None:
        result = fit_model(ref, gpus, runtime, cpu_free, options)
        if isinstance(result, str):
            raise FitInputError(result)
        return result
    try:
        spec = spec_from_gguf(gguf)
        return place_model(spec, "FILE", ref, gpus, runtime, cpu_free, options)
    except ValueError as error:  # GgufError included: it names the file and the key
        raise FitInputError(str(error)) from None


def fit_json(item: ModelFit) -> dict[str, Any]:
    model = item.model
    entry: dict[str, Any] = {
        "owner": item.owner,
        "service": item.service,
        "model": model.name,
        "quant": model.quant,
        "context": model.context,
        "parallel": model.parallel,
        "kv_cache": model.kv_cache,
    }
    placement = item.placement
    if placement is None:
        return entry | {"fits": None, "verdict": "unknown", "reason": item.problem}
    return entry | {
        "runtime": placement.runtime,
        "weights_bytes": placement.memory.weights_bytes,
        "kv_bytes": placement.memory.kv_bytes,
        "overhead_bytes": placement.overhead_bytes,
        "total_bytes": placement.total_bytes,
        "estimate_bytes": placement.estimate_bytes,
        "max_context": placement.max_context,
        "fits": placement.fits,
        "verdict": placement.verdict,
        "reason": placement.reason,
        "cpu_layers": placement.cpu_layers,
        "cpu_bytes": placement.cpu_bytes,
        "devices": [
            {
                "gpu": d.gpu,
                "layers": d.layers,
                "weights_bytes": d.weights_bytes,
                "kv_bytes": d.kv_bytes,
                "overhead_bytes": d.overhead_bytes,
                "total_bytes": d.total_bytes,
                "estimate_bytes": d.estimate_bytes,
                "vram_bytes": d.vram_bytes,
                "free_before_bytes": d.free_before_bytes,
                "headroom_bytes": d.headroom_bytes,
            }
            for d in placement.devices
        ],
    }


COLUMNS = (
    "where", "model", "device", "layers", "weights", "KV", "overhead", "total", "estimate",
    "free before", "headroom", "verdict",
)  # fmt: skip
TEXT_COLUMNS = {"where", "model", "device", "verdict"}


def _probed(lab: Lab, snapshots: Path) -> dict[str, HostFacts]:
    """Each physical host's snapshot under ``snapshots/<host>/`` (a probe's ``--out``)."""
    return {
        name: load_snapshot(snapshots / name) for name in lab.hosts if (snapshots / name).is_dir()
    }


def tensor_parallel_notes(
    lab: Lab, fits: list[ModelFit], probed: Mapping[str, HostFacts]
) -> dict[tuple[str, str], str]:
    """For each vLLM model split over several GPUs of a probed host: what the host's GPU
    topology (nvidia-smi topo -m) says about that group, keyed by (owner, model)."""
    from labsmith.checks.topology import tensor_parallel_advice

    notes: dict[tuple[str, str], str] = {}
    for item in fits:
        placement = item.placement
        host = lab.hosts.get(item.owner)
        facts = probed.get(item.owner)
        if placement is None or placement.runtime != "vllm" or len(placement.devices) < 2:
            continue
        if host is None or facts is None or not facts.gpu_topology or facts.nvidia_smi is None:
            continue
        # nvidia-smi numbers GPUs in PCI bus order, the order of its XML report.
        index = {gpu.pci_address: n for n, gpu in enumerate(facts.nvidia_smi.gpus)}
        pci = {gpu.name: gpu.pci for gpu in host.spec.gpus}
        chosen = [index.get(pci.get(device.gpu, "")) for device in placement.devices]
        if any(n is None for n in chosen):
            continue
        try:
            advice = tensor_parallel_advice(
                facts.gpu_topology, [n for n in chosen if n is not None]
            )
        except ValueError:
            continue
        if advice:
            notes[(item.owner, item.model.name)] = advice
    return notes


def _print(fits: list[ModelFit], as_json: bool, topology: dict[tuple[str, str], str]) -> None:
    if as_json:
        document = {
            "placements": [
                {**fit_json(item), "topology": topology.get((item.owner, item.model.name))}
                for item in fits
            ]
        }
        click.echo(json.dumps(redact_json(document), indent=2))
        return
    console = make_console()
    if not fits:
        console.print("no model-serving service with models (ollama, llama_cpp, vllm) here")
    table = Table(title="VRAM fit", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in TEXT_COLUMNS else "right")
    for item in fits:
        _rows(table, item)
    console.print(table)
    for item in fits:
        reason = item.placement.reason if item.placement else item.problem
        console.print(f"{shown(item.owner)} {shown(item.model.name)}: {shown(reason)}")
        if item.placement is not None:
            _notes(console, item.placement)
        advice = topology.get((item.owner, item.model.name))
        if advice:
            console.print(f"  GPU topology: {shown(advice)}")


def _notes(console: Console, placement: Placement) -> None:
    estimate = placement.estimate_bytes
    if estimate is not None and placement.devices:
        allocated = placement.total_bytes + placement.cpu_bytes
        console.print(
            f"  Ollama's scheduler charges {format_size(estimate)} (the estimate column) for "
            f"the {format_size(allocated)} it allocates"
        )
    if placement.max_context is not None:
        console.print(f"  the largest context vLLM can serve here: {placement.max_context}")
    if placement.fix:
        console.print(f"  fix: {shown(placement.fix)}")


def _rows(table: Table, item: ModelFit) -> None:
    # Names come from the inventory, a GGUF file's metadata or the command line.
    where = shown(f"{item.owner}/{item.service}")
    model = item.model
    label = shown(f"{model.name} {model.quant or ''} ctx {model.context} x{model.parallel}")
    placement = item.placement
    if placement is None:
        table.add_row(where, label, "-", "", "", "", "", "", "", "", "", "[dim]unknown[/]")
        return
    verdict = f"[{VERDICT_STYLE[placement.verdict]}]{placement.verdict}[/]"
    for d in placement.devices:
        table.add_row(
            where,
            label,
            shown(d.gpu),
            str(d.layers),
            format_size(d.weights_bytes),
            format_size(d.kv_bytes),
            format_size(d.overhead_bytes),
            format_size(d.total_bytes),
            "" if d.estimate_bytes is None else format_size(d.estimate_bytes),
            format_size(d.free_before_bytes),
            format_size(max(d.headroom_bytes, 0)),
            verdict,
        )
        where = label = verdict = ""
    if placement.cpu_layers:
        table.add_row(
            where,
            label,
            "CPU",
            str(placement.cpu_layers),
            "",
            "",
            "",
            format_size(placement.cpu_bytes),
            "",
            "",
            "",
            verdict,
        )
    elif not placement.devices:
        table.add_row(where, label, "-", "", "", "", "", "", "", "", "", verdict)
