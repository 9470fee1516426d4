"""Operator identity on the real engine (issue 11 item 9), seen from the Docker adapter:

* a container made by operator "a" carries its identity; operator "b" does not list it and
  may not stop or remove it;
* an observer (owner None: the kubectl plugin, which cannot know which operator made a
  stack) lists it and may change nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.runtime import ContainerSpec
from kongmasker.api.vocabulary import LABEL_OPERATOR
from kongmasker.errors import RuntimeOperationError

pytestmark = pytest.mark.integration
LABELS = {"app.kubernetes.io/part-of": "kongmasker", "kongmasker.io/test": "operator-identity"}


@pytest.fixture
def made_by_a(docker_host: str, images: dict[str, str]) -> Iterator[str]:
    a = DockerRuntime.connect(docker_host, owner=f"op-a-{uuid.uuid4().hex[:6]}")
    info = a.create_container(
        ContainerSpec(
            name=f"km-test-owner-{uuid.uuid4().hex[:8]}",
            image="kongmasker/redis:dev",
            labels=LABELS,
            network_mode="none",
            restart=False,
        )
    )
    try:
        yield info.id
    finally:
        a.remove_container(info.id, force=True)
        a.close()


def test_another_operator_neither_sees_nor_touches_it(docker_host: str, made_by_a: str) -> None:
    b = DockerRuntime.connect(docker_host, owner="op-b")
    try:
        assert made_by_a not in {c.id for c in b.list_containers(LABELS)}
        with pytest.raises(RuntimeOperationError, match="belongs to operator"):
            b.remove_container(made_by_a, force=True)
        assert b.get_container(made_by_a) is not None
    finally:
        b.close()


def test_an_observer_sees_it_and_changes_nothing(docker_host: str, made_by_a: str) -> None:
    observer = DockerRuntime.connect(docker_host, owner=None)
    try:
        (seen,) = [c for c in observer.list_containers(LABELS) if c.id == made_by_a]
        assert seen.labels[LABEL_OPERATOR].startswith("op-a-")
        with pytest.raises(RuntimeOperationError, match="observer"):
            observer.remove_container(made_by_a, force=True)
        assert observer.get_container(made_by_a) is not None
    finally:
        observer.close()
