"""labsmith: provision and rebuild local-AI servers from one Ansible inventory."""

__version__ = "0.1.0"
