"""A Proxmox VE API simulator driven by Proxmox's published API schema.

It shares no code with ``labsmith.proxmox`` (the client side), so that a misreading of the
API cannot hide in both.
"""
