"""Endpoint handlers, one module per area; importing the package registers them all."""

from labsmith.sim.handlers import access, backup, cluster, guests, nodes

__all__ = ["access", "backup", "cluster", "guests", "nodes"]
