"""The model catalog: architecture facts and GGUF file sizes of the models people run locally.

The data is ``catalog.yml`` beside this module (each entry cites its config.json and the GGUF
repository its file sizes come from). A model not in it can still be sized from the header
of a local GGUF file (``labsmith.sizing.gguf``).
"""

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CATALOG = Path(__file__).with_name("catalog.yml")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    parameters: int
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    embedding: int
    vocab: int
    context: int
    kind: str = "chat"  # chat | embedding
    sliding_window: int | None = None
    sliding_window_layers: int | None = None  # how many of the layers attend locally
    experts: int | None = None
    experts_used: int | None = None
    files: dict[str, int] = field(default_factory=dict)  # quantisation -> GGUF bytes
    aliases: tuple[str, ...] = ()


class UnknownModelError(LookupError):
    """A model that neither the catalog nor a GGUF header describes."""


@cache
def load_catalog(path: Path = CATALOG) -> dict[str, ModelSpec]:
    """Every model under its name and each alias, lower-cased."""
    data = yaml.safe_load(path.read_text())
    models: dict[str, ModelSpec] = {}
    for entry in data["models"]:
        spec = _spec(entry)
        for key in (spec.name, *spec.aliases):
            models[key.lower()] = spec
    return models


def find_model(name: str) -> ModelSpec:
    """``llama3.1:8b``, an alias, or the tag with ``:latest`` / a quantisation suffix."""
    catalog = load_catalog()
    wanted = name.lower().removesuffix(":latest")
    for candidate in (wanted, _without_quant_suffix(wanted)):
        if candidate in catalog:
            return catalog[candidate]
    raise UnknownModelError(name)


def _without_quant_suffix(tag: str) -> str:
    """Ollama tags such as ``llama3.1:8b-instruct-q4_K_M`` name the size before the first dash."""
    base, _, variant = tag.partition(":")
    return f"{base}:{variant.split('-', 1)[0]}" if variant else base


def _spec(entry: dict[str, Any]) -> ModelSpec:
    return ModelSpec(
        name=entry["name"],
        family=entry.get("family", ""),
        parameters=int(entry["parameters"]),
        layers=int(entry["layers"]),
        attention_heads=int(entry["attention_heads"]),
        kv_heads=int(entry["kv_heads"]),
        head_dim=int(entry["head_dim"]),
        embedding=int(entry["embedding"]),
        vocab=int(entry["vocab"]),
        context=int(entry["context"]),
        kind=entry.get("kind", "chat"),
        sliding_window=entry.get("sliding_window"),
        sliding_window_layers=entry.get("sliding_window_layers"),
        experts=entry.get("experts"),
        experts_used=entry.get("experts_used"),
        files={str(k): int(v) for k, v in (entry.get("files") or {}).items()},
        aliases=tuple(entry.get("aliases") or ()),
    )
