"""Helpers shared by the simulator's tests: sample requests and a simulator serving HTTPS."""
