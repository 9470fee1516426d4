"""Fixtures of the kind suite (defined in kind_env.py)."""

from tests.kind.kind_env import demo, kind, mock_upstream

__all__ = ["demo", "kind", "mock_upstream"]
