"""Pipelines that chain labsmith's stages: validate, (probe), host playbooks, guests."""
