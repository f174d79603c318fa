"""Proxmox VE through its API: a typed adapter over proxmoxer, shared by plan and apply.

It shares no code with ``labsmith.sim`` (the simulator), so that a misreading of the API
cannot hide in both.
"""
