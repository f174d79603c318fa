"""Verdicts: what a check saw and how to fix it, with ``unknown`` for missing evidence."""

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["pass", "warn", "fail", "unknown"]

# How bad each status is, for "the worst of these".
_RANK: dict[Status, int] = {"pass": 0, "unknown": 1, "warn": 2, "fail": 3}


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=_RANK.__getitem__) if statuses else "unknown"


@dataclass(frozen=True)
class Check:
    id: str  # stable, e.g. iommu.active, gpu.isolation
    status: Status
    message: str  # what was seen, and for warn/fail how to fix it

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "status": self.status, "message": self.message}


@dataclass(frozen=True)
class GpuVerdict:
    """One GPU's readiness for passthrough (or for the host's driver, in host mode)."""

    address: str
    vendor_device: str | None
    iommu_group: int | None
    driver: str | None
    passthrough: Status
    reasons: tuple[Check, ...] = field(default_factory=tuple)
    # nvidia-smi's GPU UUID (GPU-...): stable across reboots and slot moves, unlike the
    # address, so services pin GPUs by it (CUDA_VISIBLE_DEVICES=GPU-...).
    uuid: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "address": self.address,
            "vendor_device": self.vendor_device,
            "iommu_group": self.iommu_group,
            "driver": self.driver,
            "passthrough": self.passthrough,
            "reasons": [reason.as_dict() for reason in self.reasons],
            "uuid": self.uuid,
        }
