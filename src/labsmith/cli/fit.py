"""``labsmith fit``: will the models fit in VRAM with their context and parallel requests?"""

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from labsmith.cli.options import make_console, resolve_inventory
from labsmith.cli.render import redact_json, shown
from labsmith.errors import LabsmithError
from labsmith.inventory.lab import build_lab
from labsmith.inventory.model import ModelRef
from labsmith.inventory.sources import load_inventory
from labsmith.sizing.fit import (
    ModelFit,
    display_reservations,
    fit_model,
    place_model,
    plan_lab,
)
from labsmith.sizing.gguf import spec_from_gguf
from labsmith.sizing.placement import GpuSlot, Placement
from labsmith.units import format_size, parse_size

VERDICT_STYLE = {"fits": "green", "tight": "yellow", "spills": "yellow", "does_not_fit": "bold red"}
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
    runtime: str,
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
        placement = _ad_hoc(ref, gguf, [_gpu(text, n) for n, text in enumerate(gpus)], runtime, ram)
        fits = [ModelFit("ad hoc", 0, runtime, 0, ref, placement)]
    else:
        # The typed lab only: validate's own fit rules would plan everything a second time.
        lab, _ = build_lab(load_inventory(resolve_inventory(inventory)))
        reserved = display_reservations(lab, snapshots) if snapshots else {}
        fits = plan_lab(lab, host, reserved)
    _print(fits, as_json)
    if any(f.placement is not None and f.placement.verdict == "does_not_fit" for f in fits):
        raise click.exceptions.Exit(1)


def _gpu(text: str, index: int) -> GpuSlot:
    # A bare number is GiB here (the way GPUs are sold), unlike in the inventory.
    bare = text.strip().replace(".", "", 1).isdigit()
    return GpuSlot(f"gpu{index}", _size("--gpu", text + "G" if bare else text))


def _size(option: str, text: str) -> int:
    try:
        size = parse_size(text)
    except ValueError as error:
        raise FitInputError(f"{option} {text}: {error}") from None
    except OverflowError:
        raise FitInputError(
            f"{option} {text}: too large to be a memory size; write e.g. 24G or 2T"
        ) from None
    if size <= 0:
        raise FitInputError(f"{option} {text}: must be more than zero, e.g. 24G")
    return size


def _ad_hoc(
    ref: ModelRef, gguf: Path | None, gpus: list[GpuSlot], runtime: str, ram: str | None
) -> Placement:
    cpu_free = _size("--ram", ram) if ram else None
    if gguf is None:
        result = fit_model(ref, gpus, runtime, cpu_free)
        if isinstance(result, str):
            raise FitInputError(result)
        return result
    try:
        spec = spec_from_gguf(gguf)
        return place_model(spec, "FILE", ref, gpus, runtime, cpu_free)
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
                "vram_bytes": d.vram_bytes,
                "free_before_bytes": d.free_before_bytes,
                "headroom_bytes": d.headroom_bytes,
            }
            for d in placement.devices
        ],
    }


def _print(fits: list[ModelFit], as_json: bool) -> None:
    if as_json:
        document = {"placements": [fit_json(item) for item in fits]}
        click.echo(json.dumps(redact_json(document), indent=2))
        return
    console = make_console()
    if not fits:
        console.print("no model-serving service with models (ollama, llama_cpp, vllm) here")
    table = Table(title="VRAM fit", title_justify="left")
    for column in (
        "where",
        "model",
        "device",
        "layers",
        "weights",
        "KV",
        "overhead",
        "total",
        "free before",
        "headroom",
        "verdict",
    ):
        table.add_column(
            column,
            justify="right"
            if column in ("layers", "weights", "KV", "overhead", "total", "free before", "headroom")
            else "left",
        )
    for item in fits:
        _rows(table, item)
    console.print(table)
    for item in fits:
        reason = item.placement.reason if item.placement else item.problem
        console.print(f"{shown(item.owner)} {shown(item.model.name)}: {shown(reason)}")


def _rows(table: Table, item: ModelFit) -> None:
    # Names come from the inventory, a GGUF file's metadata or the command line.
    where = shown(f"{item.owner}/{item.service}")
    model = item.model
    label = shown(f"{model.name} {model.quant or ''} ctx {model.context} x{model.parallel}")
    placement = item.placement
    if placement is None:
        table.add_row(where, label, "-", "", "", "", "", "", "", "", "[dim]unknown[/]")
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
            verdict,
        )
    elif not placement.devices:
        table.add_row(where, label, "-", "", "", "", "", "", "", "", verdict)
