"""Which GPUs each model server can use, and the ROCm override that makes a near card work.

A GPU's architecture comes from the inventory's ``vendor_device`` (PCI vendor:device id):
NVIDIA cards by CUDA compute capability, AMD cards by LLVM gfx target. A device id not in
``DEVICES`` is ``unknown`` and never produces a finding: labsmith says nothing it cannot know.

Sources (read 2026-12):

- Ollama ``docs/gpu.mdx`` (github.com/ollama/ollama, tag v0.33.0-rc2,
  fb30760996871fa9460115c753afd2c60d4ab0f7): NVIDIA "compute capability 5.0+"; the ROCm LLVM
  targets it ships kernels for on Linux (gfx908, gfx90a, gfx942, gfx950, gfx1030, gfx1100,
  gfx1101, gfx1102, gfx1150, gfx1151, gfx1200, gfx1201); other GPUs through its Vulkan
  backend, "enabled by default when the backend is installed"; and
  ``HSA_OVERRIDE_GFX_VERSION`` ("the Radeon RX 5400 is gfx1034 ... The closest support is
  gfx1030 ... HSA_OVERRIDE_GFX_VERSION="10.3.0"").
- vLLM ``docs/getting_started/installation/gpu.cuda.inc.md``: "GPU: compute capability 7.5
  or higher (e.g., T4, RTX20xx, A100, L4, H100, B200, etc.)" (7.0, V100, in releases before
  2025); ``gpu.rocm.inc.md``: "MI200s (gfx90a), MI300 (gfx942), MI350 (gfx950), Radeon RX
  7900 series (gfx1100/1101), Radeon RX 9000 series (gfx1200/1201), Ryzen AI MAX / AI 300
  Series (gfx1151/1150)", ROCm 6.3 or above.
- ROCm's supported GPU list (rocm.docs.amd.com, "System requirements (Linux)"): RDNA2 only as
  gfx1030 (Radeon PRO W6800/V620), RDNA3 as gfx1100/gfx1101; GCN4 Polaris (gfx803, RX
  470/480/570/580) left ROCm's support with ROCm 4.x and has no kernels in ROCm 6, so no
  override reaches it. The override loads the kernels of the named target on a card of the
  same generation with the same instruction set: every RDNA2 die runs gfx1030 code, every
  RDNA3 die gfx1100 code (the mapping AMD's community and Ollama's docs use).
- PCI ids: the PCI ID Repository (pci-ids.ucw.cz) for 10de (NVIDIA) and 1002 (AMD); compute
  capabilities from NVIDIA's CUDA GPUs page, gfx targets from LLVM's AMDGPU processor table.
"""

from dataclasses import dataclass
from typing import Literal

Vendor = Literal["nvidia", "amd"]
Backend = Literal["cuda", "rocm", "vulkan"]
Runtime = Literal["ollama", "vllm"]


@dataclass(frozen=True)
class GpuArch:
    """What a runtime needs to know of a card: its family and CUDA capability or gfx target."""

    vendor: Vendor
    family: str
    compute_capability: tuple[int, int] | None = None  # NVIDIA
    gfx_target: str | None = None  # AMD


def _nv(family: str, major: int, minor: int) -> GpuArch:
    return GpuArch("nvidia", family, compute_capability=(major, minor))


def _amd(family: str, gfx: str) -> GpuArch:
    return GpuArch("amd", family, gfx_target=gfx)


# The cards the example labs and README name, and their common neighbours.
DEVICES: dict[str, GpuArch] = {
    # NVIDIA
    "10de:2b85": _nv("RTX 5090 (Blackwell)", 12, 0),
    "10de:2684": _nv("RTX 4090 (Ada)", 8, 9),
    "10de:2204": _nv("RTX 3090 (Ampere)", 8, 6),
    "10de:2203": _nv("RTX 3090 Ti (Ampere)", 8, 6),
    "10de:2206": _nv("RTX 3080 (Ampere)", 8, 6),
    "10de:2484": _nv("RTX 3070 (Ampere)", 8, 6),
    "10de:2503": _nv("RTX 3060 (Ampere)", 8, 6),
    "10de:2504": _nv("RTX 3060 LHR (Ampere)", 8, 6),
    "10de:20b0": _nv("A100 SXM4 40GB (Ampere)", 8, 0),
    "10de:2330": _nv("H100 SXM5 80GB (Hopper)", 9, 0),
    "10de:1e07": _nv("RTX 2080 Ti (Turing)", 7, 5),
    "10de:1eb8": _nv("Tesla T4 (Turing)", 7, 5),
    "10de:1db4": _nv("Tesla V100 PCIe 16GB (Volta)", 7, 0),
    "10de:1b06": _nv("GTX 1080 Ti (Pascal)", 6, 1),
    "10de:1b38": _nv("Tesla P40 (Pascal)", 6, 1),
    # AMD
    "1002:67df": _amd("Radeon RX 470/480/570/580 (Polaris, GCN4)", "gfx803"),
    "1002:687f": _amd("Radeon RX Vega 56/64 (GCN5)", "gfx900"),
    "1002:66af": _amd("Radeon VII (GCN5)", "gfx906"),
    "1002:740f": _amd("Instinct MI210 (CDNA2)", "gfx90a"),
    "1002:74a1": _amd("Instinct MI300X (CDNA3)", "gfx942"),
    "1002:73bf": _amd("Radeon RX 6800/6800 XT/6900 XT (RDNA2)", "gfx1030"),
    "1002:73df": _amd("Radeon RX 6700/6700 XT/6750 XT (RDNA2)", "gfx1031"),
    "1002:73ff": _amd("Radeon RX 6600/6600 XT/6650 XT (RDNA2)", "gfx1032"),
    "1002:744c": _amd("Radeon RX 7900 XT/XTX (RDNA3)", "gfx1100"),
    "1002:747e": _amd("Radeon RX 7700 XT/7800 XT (RDNA3)", "gfx1101"),
    "1002:7480": _amd("Radeon RX 7600/7600 XT (RDNA3)", "gfx1102"),
    "1002:7550": _amd("Radeon RX 9070/9070 XT (RDNA4)", "gfx1201"),
    "1002:7551": _amd("Radeon AI PRO R9700 (RDNA4)", "gfx1201"),
}

# Ollama docs/gpu.mdx, "Overrides on Linux" and its LLVM target table.
OLLAMA_MIN_COMPUTE_CAPABILITY = (5, 0)
OLLAMA_ROCM_TARGETS = frozenset(
    {
        "gfx908",
        "gfx90a",
        "gfx942",
        "gfx950",
        "gfx1030",
        "gfx1100",
        "gfx1101",
        "gfx1102",
        "gfx1150",
        "gfx1151",
        "gfx1200",
        "gfx1201",
    }
)
# vLLM docs/getting_started/installation/gpu.cuda.inc.md and gpu.rocm.inc.md.
VLLM_MIN_COMPUTE_CAPABILITY = (7, 5)
VLLM_ROCM_TARGETS = frozenset(
    {"gfx90a", "gfx942", "gfx950", "gfx1100", "gfx1101", "gfx1150", "gfx1151", "gfx1200", "gfx1201"}
)
# HSA_OVERRIDE_GFX_VERSION: consumer dies of a generation whose ROCm support is one target.
HSA_OVERRIDES: dict[str, str] = {
    # RDNA2 (Navi 22/23/24 and the APUs) run gfx1030 kernels.
    "gfx1031": "10.3.0",
    "gfx1032": "10.3.0",
    "gfx1033": "10.3.0",
    "gfx1034": "10.3.0",
    "gfx1035": "10.3.0",
    "gfx1036": "10.3.0",
    # RDNA3 (Navi 32/33 and the Phoenix APUs) run gfx1100 kernels.
    "gfx1101": "11.0.0",
    "gfx1102": "11.0.0",
    "gfx1103": "11.0.0",
}


def hsa_override(gfx_target: str) -> str | None:
    """The ``HSA_OVERRIDE_GFX_VERSION`` value that lets ROCm run ``gfx_target`` as the
    nearest officially supported target of its generation, or None where there is none
    (the target is supported as it is, or nothing close is: gfx803)."""
    return HSA_OVERRIDES.get(gfx_target.strip().lower())


def _override_target(version: str) -> str:
    major, minor, step = version.split(".")
    return f"gfx{major}{minor}{step}"


@dataclass(frozen=True)
class Support:
    """Whether ``runtime`` can use a GPU, through which backend, and what to do if not."""

    runtime: Runtime
    gpu: str
    arch: GpuArch | None
    backend: Backend | None  # None: it cannot, or the card is unknown
    note: str = ""  # why, or how (an override, a fallback backend)
    fix: str = ""  # what would work instead, where it cannot

    @property
    def known(self) -> bool:
        return self.arch is not None

    @property
    def usable(self) -> bool:
        return self.arch is None or self.backend is not None


def gpu_support(runtime: Runtime, gpu: str, vendor_device: str) -> Support:
    """``gpu`` is the inventory name; ``vendor_device`` its PCI id, e.g. ``1002:67df``."""
    arch = DEVICES.get(vendor_device.strip().lower())
    if arch is None:
        return Support(runtime, gpu, None, None)
    if arch.compute_capability is not None:
        return _nvidia(runtime, gpu, arch, arch.compute_capability)
    return _amd_support(runtime, gpu, arch, arch.gfx_target or "")


def _nvidia(runtime: Runtime, gpu: str, arch: GpuArch, capability: tuple[int, int]) -> Support:
    wanted = VLLM_MIN_COMPUTE_CAPABILITY if runtime == "vllm" else OLLAMA_MIN_COMPUTE_CAPABILITY
    if capability >= wanted:
        return Support(runtime, gpu, arch, "cuda")
    have = ".".join(map(str, capability))
    need = ".".join(map(str, wanted))
    note = (
        f"{runtime} needs CUDA compute capability {need} or newer and {gpu} ({arch.family}) "
        f"has {have}"
    )
    fix = (
        "serve it with Ollama or llama.cpp (CUDA compute capability 5.0+, or their Vulkan "
        "backend), or give the service a newer card"
    )
    return Support(runtime, gpu, arch, None, note, fix)


def _amd_support(runtime: Runtime, gpu: str, arch: GpuArch, gfx: str) -> Support:
    targets = VLLM_ROCM_TARGETS if runtime == "vllm" else OLLAMA_ROCM_TARGETS
    if gfx in targets:
        return Support(runtime, gpu, arch, "rocm")
    override = hsa_override(gfx)
    if override is not None and _override_target(override) in targets:
        target = _override_target(override)
        note = f"ROCm runs {gfx} as {target} with HSA_OVERRIDE_GFX_VERSION={override}"
        return Support(runtime, gpu, arch, "rocm", note)
    if runtime == "ollama":
        note = f"ROCm has no kernels for {gfx}; llama.cpp (Ollama's too) runs it on Vulkan"
        return Support(runtime, gpu, arch, "vulkan", note)
    reach = "no" if override is None else "no supported"
    note = (
        f"vLLM's ROCm build has no kernels for {gpu} ({arch.family}, {gfx}) and {reach} "
        "HSA_OVERRIDE_GFX_VERSION reaches one"
    )
    fix = (
        "serve it with llama.cpp's Vulkan backend (kind llama_cpp) or Ollama, which falls back "
        "to Vulkan, or give vLLM a supported card (Radeon RX 7900 or 9000 series, Instinct "
        "MI200 or newer)"
    )
    return Support(runtime, gpu, arch, None, note, fix)
