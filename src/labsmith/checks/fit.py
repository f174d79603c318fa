"""VRAM fit as findings: every served model placed on its GPUs by labsmith.sizing."""

from collections.abc import Iterator

from labsmith.inventory.findings import Finding, Severity
from labsmith.inventory.lab import Lab
from labsmith.inventory.rules.report import finding
from labsmith.sizing.fit import ModelFit, plan_lab

RULES = {
    "fit.does_not_fit": "a model does not fit its GPUs (nor, for Ollama, the memory beside them)",
    "fit.runtime_gpu": "a service's runtime has no backend for its GPU (too old, or not a target)",
    "fit.spills": "a model's layers spill from VRAM to the CPU",
    "fit.tight": "a model fits with under 10% of a GPU left free",
    "fit.unknown_model": "a served model that labsmith cannot size",
}
FIX = {
    "fit.does_not_fit": (
        "lower context or parallel, pick a smaller quantisation or model, or add GPUs"
    ),
    "fit.spills": (
        "lower context or parallel, use kv_cache q8_0, a smaller quantisation, or more VRAM"
    ),
    "fit.tight": "leave room: lower context or parallel, or use kv_cache q8_0",
    # Replaced by the placement's own fix, which names what would run on that GPU.
    "fit.runtime_gpu": "use a runtime with a backend for this GPU, or another GPU",
    "fit.unknown_model": (
        "use a model from labsmith's catalog, or check it with labsmith fit --gguf FILE"
    ),
}
# A runtime with no backend for its GPU cannot start at all.
SEVERITY: dict[str, Severity] = {"fit.does_not_fit": "error", "fit.runtime_gpu": "error"}


def check_models(lab: Lab) -> Iterator[Finding]:
    for item in plan_lab(lab):
        rule = _rule(item)
        if rule is None:
            continue
        owner = lab.owner(item.owner)
        message = item.placement.reason if item.placement else item.problem
        fix = item.placement.fix if item.placement and item.placement.fix else FIX[rule]
        yield finding(
            owner,
            rule,
            ("labsmith_services", item.service_index, "models", item.model_index),
            f"{item.model.name} in {item.service}: {message}",
            fix,
            severity=SEVERITY.get(rule, "warning"),
        )


def _rule(item: ModelFit) -> str | None:
    if item.placement is None:
        return "fit.unknown_model"
    return {
        "does_not_fit": "fit.does_not_fit",
        "unsupported_gpu": "fit.runtime_gpu",
        "spills": "fit.spills",
        "tight": "fit.tight",
    }.get(item.placement.verdict)
