"""Fixtures of the KongMaskerStack e2e tests (defined in stack_env.py)."""

from tests.e2e.stack_env import docker_client, mock_upstream, stack_crd, stack_env

__all__ = ["docker_client", "mock_upstream", "stack_crd", "stack_env"]
