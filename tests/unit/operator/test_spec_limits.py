"""The KongMaskerStack CRD bounds the size of a spec so that kopf's copy of it
(kopf.kongmasker.io/last-handled-configuration) and kubectl's (last-applied-configuration)
always fit in the 256 KiB Kubernetes allows for all annotations of an object (issue 15: a spec
over ~128 KB left the finalizer stuck). Computed from the CRD itself: every string must have a
maxLength (and an ASCII pattern, or count as 12 bytes a character), every list a maxItems; env
values are bounded together by the spec-level CEL rule, read from the CRD too.

The stack names: the longest namespace and stack name the API server accepts still give
Docker container and volume names Docker accepts (api/naming.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kongmasker.api import naming
from kongmasker.api.spec import MAX_PLUGIN_STRING, is_docker_name
from kongmasker.api.vocabulary import Component

pytestmark = pytest.mark.unit

CRD = Path(__file__).resolve().parents[3] / "crds" / "kongmaskerstack.yaml"
ANNOTATION_LIMIT = 256 * 1024
"""apimachinery's TotalAnnotationSizeLimitB: keys and values of all annotations together."""
PYTHON_JSON_WORST = 12
"""Bytes per character in kopf's json.dumps (ensure_ascii): a non-BMP one is two \\uXXXX."""
GO_JSON_WORST = 6
"""Bytes per character in kubectl's Go JSON: a control character is \\u00XX."""
ASCII_JSON_WORST = 2
"""Bytes per character of a printable-ASCII string (`"` and `\\` are escaped)."""
NUMBER = 24
PLUGIN_FIELD_NAME = 64


def _schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _ascii_only(pattern: str | None) -> bool:
    """A pattern whose every character class is a positive ASCII one (no `[^`, no `.`)."""
    if not pattern or "[^" in pattern:
        return False
    bare = re.sub(r"\\.|\[[^\]]*\]", "", pattern)
    return "." not in bare and pattern.isascii()


def _env_total() -> int:
    rules = [r["rule"] for r in _schema()["x-kubernetes-validations"]]
    (rule,) = [r for r in rules if ".env.map(" in r]
    return int(re.search(r"<=\s*(\d+)\s*$", rule).group(1))  # type: ignore[union-attr]


def worst(schema: dict[str, Any], path: str, per_char: int, env: list[str]) -> int:
    """Largest JSON encoding of a value of `schema`, strings of a non-ASCII pattern at
    `per_char` bytes a character; env values are collected in `env` and counted apart."""
    kind = schema.get("type")
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        assert path == "spec.kong.plugin.config", f"{path}: unbounded object"
        field = PLUGIN_FIELD_NAME + 3 + MAX_PLUGIN_STRING * ASCII_JSON_WORST + 2 + 1
        return 2 + schema["maxProperties"] * field
    if kind == "object":
        props = schema.get("properties") or {}
        return 2 + sum(
            len(k) + 4 + worst(v, f"{path}.{k}", per_char, env) for k, v in props.items()
        )
    if kind == "array":
        assert "maxItems" in schema, f"{path}: no maxItems"
        return 2 + schema["maxItems"] * (worst(schema["items"], path + "[]", per_char, env) + 1)
    if kind == "string":
        if "enum" in schema:
            return 2 + max(len(e) for e in schema["enum"])
        assert "maxLength" in schema, f"{path}: no maxLength"
        if path.endswith((".env[].value", ".env[].name")):
            env.append(path)
            return 2  # its characters are counted against the spec-wide env bound
        ascii_only = _ascii_only(schema.get("pattern"))
        assert ascii_only, f"{path}: no ASCII pattern"
        return 2 + schema["maxLength"] * (ASCII_JSON_WORST if ascii_only else per_char)
    return NUMBER


@pytest.mark.parametrize(
    ("copy", "per_char"), [("kopf", PYTHON_JSON_WORST), ("kubectl", GO_JSON_WORST)]
)
def test_largest_spec_leaves_room_in_the_annotations(copy: str, per_char: int) -> None:
    env: list[str] = []
    structure = worst(_schema(), "spec", per_char, env)
    assert len(env) == 8  # env names and values of 4 components: under the spec-wide bound
    largest = structure + _env_total() * per_char
    print(f"largest spec in {copy}'s annotation: {largest} bytes ({structure} without env)")
    assert largest < ANNOTATION_LIMIT * 0.45, f"{copy}: {largest} bytes"


def test_both_copies_together_leave_a_quarter_for_the_users_annotations() -> None:
    both = sum(
        worst(_schema(), "spec", per_char, []) + _env_total() * per_char
        for per_char in (PYTHON_JSON_WORST, GO_JSON_WORST)
    )
    print(f"largest spec, kopf's and kubectl's copies together: {both} bytes")
    assert both < ANNOTATION_LIMIT * 0.75


def test_a_real_spec_at_the_env_bound_measures_within_the_estimate() -> None:
    """Not just arithmetic: the worst characters through the encoders the two copies use."""
    total = _env_total()
    per = total // 4 - 8
    value = "\U0001f600" * (per - 8)  # non-BMP: 12 bytes in Python's ASCII JSON
    spec = {
        c: {"env": [{"name": "V" * 8, "value": value}]}
        for c in ("redis", "kong", "nginx", "backend")
    }
    kopf = json.dumps(spec, separators=(",", ":"))
    assert len(kopf.encode()) <= total * PYTHON_JSON_WORST + 400
    assert len(json.dumps(spec, ensure_ascii=False).encode()) <= total * GO_JSON_WORST


def test_stack_name_bound_is_in_the_crd() -> None:
    crd = yaml.safe_load(CRD.read_text())
    rules = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    assert any(r["rule"] == f"size(self.metadata.name) <= {MAX_NAME}" for r in rules)


MAX_NAME = 63
MAX_NAMESPACE = 63
"""Kubernetes' limit for a namespace (DNS label)."""


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("n" * MAX_NAMESPACE, "s" * MAX_NAME),
        ("a" * MAX_NAMESPACE, "a." + "b" * (MAX_NAME - 4) + ".c"),
        ("0", "9"),
        ("x-" + "y" * (MAX_NAMESPACE - 2), "0-" + "z" * (MAX_NAME - 2)),
    ],
)
def test_longest_names_give_names_docker_accepts(namespace: str, name: str) -> None:
    names = [naming.container_name(namespace, name, str(c)) for c in Component]
    names += [naming.surge_name(n) for n in names]
    names.append(naming.redis_volume(namespace, name))
    for docker_name in names:
        assert is_docker_name(docker_name), docker_name
        # A volume is a directory of the engine's data root: one path component.
        assert len(docker_name.encode()) <= 255, docker_name
        assert naming.parse_prefix(naming.stack_prefix(namespace, name)) == (namespace, name)


@pytest.mark.parametrize("bad", ["", "a", "-a", "a b", "a/b", "a\nb", "é1", "a\x00b"])
def test_docker_name_grammar(bad: str) -> None:
    assert not is_docker_name(bad)
