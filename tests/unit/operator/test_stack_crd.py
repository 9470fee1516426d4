"""The hand-written CRD and the Python spec model agree on defaults, and the CRD stays
structural (no $ref, every property typed)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from tests.support import REPO_ROOT

from kongmasker.api.spec import StackSpec

pytestmark = pytest.mark.unit


def _schema() -> dict[str, Any]:
    crd = yaml.safe_load((REPO_ROOT / "crds/kongmaskerstack.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _default(schema: dict[str, Any], *path: str) -> Any:
    for key in path:
        schema = schema["properties"][key]
    return schema["default"]


def test_crd_defaults_match_the_model() -> None:
    s = _schema()
    spec = StackSpec.from_dict({})
    assert _default(s, "upstream", "url") == spec.upstream.url
    assert _default(s, "redis", "port") == spec.redis.port
    assert _default(s, "redis", "db") == spec.redis.db
    assert _default(s, "kong", "proxyPort") == spec.kong.proxy_port
    assert _default(s, "kong", "adminPort") == spec.kong.admin_port
    assert _default(s, "kong", "statusPort") == spec.kong.status_port
    assert _default(s, "kong", "routePaths") == list(spec.kong.route_paths)
    assert _default(s, "kong", "masking", "mappingTtlSeconds") == spec.kong.mapping_ttl_seconds
    assert _default(s, "kong", "masking", "failSecure") is spec.kong.fail_secure
    assert _default(s, "nginx", "port") == spec.nginx.port
    assert _default(s, "nginx", "proxyTimeoutSeconds") == spec.nginx.proxy_timeout_seconds
    assert _default(s, "nginx", "clientMaxBodySize") == spec.nginx.client_max_body_size
    assert _default(s, "backend", "port") == spec.backend.port
    assert _default(s, "network", "mode") == spec.network.mode
    assert _default(s, "dockerHost", "address") == spec.docker_host.address


def test_crd_is_structural() -> None:
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node, path
            if "properties" in node:
                assert node.get("type") == "object", path
                for key, child in node["properties"].items():
                    assert "type" in child or "x-kubernetes-int-or-string" in child, f"{path}.{key}"
                    walk(child, f"{path}.{key}")
            if "items" in node:
                walk(node["items"], f"{path}[]")

    walk(_schema(), "spec")
