"""Services: the GPUs they may use and the ports they listen on."""

from collections.abc import Iterator

from labsmith.inventory.findings import Finding
from labsmith.inventory.lab import Guest, Lab, PhysicalHost
from labsmith.inventory.rules.report import finding

RULES = {
    "service.gpu_unknown": "a service uses a GPU its host cannot use",
    "service.port_conflict": "two services of one host listen on one port",
}


def check_services(lab: Lab) -> Iterator[Finding]:
    for owner in lab.managed():
        yield from _gpus(owner)
        yield from _ports(owner)


def _usable_gpus(owner: PhysicalHost | Guest) -> tuple[set[str], str]:
    if isinstance(owner, PhysicalHost):
        usable = {gpu.name for gpu in owner.spec.gpus if gpu.mode == "host"}
        return usable, f"host-mode GPUs of {owner.name}"
    return set(owner.spec.guest.gpus), f"GPUs given to {owner.name} in labsmith_guest.gpus"


def _gpus(owner: PhysicalHost | Guest) -> Iterator[Finding]:
    usable, described = _usable_gpus(owner)
    for index, service in enumerate(owner.spec.services):
        for gpu_index, name in enumerate(service.gpus):
            if name not in usable:
                yield finding(
                    owner,
                    "service.gpu_unknown",
                    ("labsmith_services", index, "gpus", gpu_index),
                    f"service {service.name} uses GPU {name!r}, which is not among the "
                    f"{described} ({', '.join(sorted(usable)) or 'none'})",
                    "use one of those GPUs"
                    + (
                        " (a passthrough GPU belongs to its VM)"
                        if isinstance(owner, PhysicalHost)
                        else ", or add the GPU to labsmith_guest.gpus"
                    ),
                )


def _ports(owner: PhysicalHost | Guest) -> Iterator[Finding]:
    ports: dict[int, str] = {}
    for index, service in enumerate(owner.spec.services):
        if service.port is None:
            continue
        if service.port in ports:
            yield finding(
                owner,
                "service.port_conflict",
                ("labsmith_services", index, "port"),
                f"service {service.name} listens on port {service.port}, already taken by "
                f"{ports[service.port]} on {owner.name}",
                "give each service of a host its own port",
            )
        ports.setdefault(service.port, service.name)
