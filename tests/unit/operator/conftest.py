from __future__ import annotations

import pytest
from tests.unit.operator.operator_fakes import SECRETS, SPEC, FakeProbes, FakeRuntime

from kongmasker.api.spec import StackSpec
from kongmasker.config import HealthSettings, Settings
from kongmasker.core.render import StackRef, render_stack


@pytest.fixture
def ref() -> StackRef:
    return StackRef("default", "demo", "uid-1")


@pytest.fixture
def spec() -> StackSpec:
    return StackSpec.from_dict(SPEC)


@pytest.fixture
def settings() -> Settings:
    return Settings(health=HealthSettings(gate_timeout=0.05, poll_interval=0.01))


@pytest.fixture
def runtime(spec: StackSpec) -> FakeRuntime:
    rt = FakeRuntime()
    rt.images |= {
        "kongmasker/redis:dev",
        "kongmasker/gateway:dev",
        "kongmasker/nginx:dev",
        "kongmasker/backend:dev",
    }
    return rt


@pytest.fixture
def probes(runtime: FakeRuntime, spec: StackSpec) -> FakeProbes:
    ports = {
        spec.redis.port: "redis",
        spec.kong.status_port: "kong",
        spec.kong.admin_port: "kong",
        spec.nginx.port: "nginx",
        spec.backend.port: "backend",
    }
    return FakeProbes(runtime, ports)


@pytest.fixture
def desired(ref: StackRef, spec: StackSpec):  # type: ignore[no-untyped-def]
    return render_stack(ref, spec, SECRETS, 20)
