"""Hostile KongMaskerStack and StackBackup specs against the real kube-apiserver (issue 15
items 4 and 6): each is refused at admission with a message naming the field, so nothing of
it ever reaches the operator or Docker; values at the limits are accepted. Needs only the API
server (the `kubectl` and `stack_crd` fixtures; no dockerd, no operator). What only the host
or the Secrets can decide is refused by preflight: tests/unit/operator/test_hostile_input.py.

Objects are sent with `kubectl create --dry-run=server`: full admission (schema, CEL, the
API server's own limits) without storing anything, and without kubectl's client-side
last-applied annotation, so the size cases test the schema, not the annotation limit."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

Kubectl = Callable[..., Any]
NUL = "\x00"


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def stack(spec: dict[str, Any], name: str = "hostile") -> dict[str, Any]:
    return {
        "apiVersion": "kongmasker.io/v1alpha1",
        "kind": "KongMaskerStack",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def backup(spec: dict[str, Any], name: str = "hostile-backup") -> dict[str, Any]:
    base = {"stackRef": {"name": "demo"}, "type": "Backup"}
    return {
        "apiVersion": "kongmasker.io/v1alpha1",
        "kind": "StackBackup",
        "metadata": {"name": name, "namespace": "default"},
        "spec": _merge(base, spec),
    }


def env(component: str, *pairs: tuple[str, Any]) -> dict[str, Any]:
    return {component: {"env": [{"name": n, "value": v} for n, v in pairs]}}


def res(component: str, **limits: Any) -> dict[str, Any]:
    return {component: {"resources": limits}}


# (id, object, text the API error must contain: the field's path)
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    # images: whitespace, newlines, NUL, size, wrong type
    ("image-newline", stack({"redis": {"image": "redis:7\nlatest"}}), "spec.redis.image"),
    ("image-nul", stack({"kong": {"image": f"kong{NUL}:3"}}), "spec.kong.image"),
    ("image-space", stack({"nginx": {"image": "nginx latest"}}), "spec.nginx.image"),
    ("image-empty", stack({"backend": {"image": ""}}), "spec.backend.image"),
    ("image-oversize", stack({"backend": {"image": "b" * 600}}), "spec.backend.image"),
    ("image-leading-dash", stack({"redis": {"image": "-redis"}}), "spec.redis.image"),
    ("image-not-string", stack({"redis": {"image": 7}}), "spec.redis.image"),
    # dockerHost: address a host name or IP, url without whitespace
    (
        "address-newline",
        stack({"dockerHost": {"address": "127.0.0.1\n"}}),
        "spec.dockerHost.address",
    ),
    (
        "address-header",
        stack({"dockerHost": {"address": "h\r\nX-Evil: 1"}}),
        "spec.dockerHost.address",
    ),
    (
        "address-url",
        stack({"dockerHost": {"address": "tcp://10.0.0.1"}}),
        "spec.dockerHost.address",
    ),
    (
        "address-port",
        stack({"dockerHost": {"address": "10.0.0.1:2375"}}),
        "spec.dockerHost.address",
    ),
    (
        "address-nul",
        stack({"dockerHost": {"address": f"10.0.0.1{NUL}"}}),
        "spec.dockerHost.address",
    ),
    (
        "address-label-64",
        stack({"dockerHost": {"address": "a" * 64 + ".io"}}),
        "spec.dockerHost.address",
    ),
    ("address-oversize", stack({"dockerHost": {"address": "a." * 140}}), "spec.dockerHost.address"),
    ("address-empty", stack({"dockerHost": {"address": ""}}), "spec.dockerHost.address"),
    ("docker-url-newline", stack({"dockerHost": {"url": "tcp://h:2376\n"}}), "spec.dockerHost.url"),
    ("docker-url-scheme", stack({"dockerHost": {"url": "ssh://h"}}), "spec.dockerHost.url"),
    # env: names, NUL, size (per value and the spec-wide bound), type
    ("env-nul", stack(env("backend", ("A", f"x{NUL}y"))), "spec.backend.env[0].value"),
    ("env-200kb", stack(env("kong", ("BIG", "v" * 200_000))), "spec.kong.env[0].value"),
    (
        "env-total",
        stack({c: env(c, ("V", "x" * 1100))[c] for c in ("redis", "kong", "nginx", "backend")}),
        "spec.redis.env",
    ),
    ("env-name-digit", stack(env("nginx", ("1X", "v"))), "spec.nginx.env[0].name"),
    ("env-name-newline", stack(env("redis", ("A\nB", "v"))), "spec.redis.env[0].name"),
    ("env-name-oversize", stack(env("redis", ("N" * 129, "v"))), "spec.redis.env[0].name"),
    (
        "env-too-many",
        stack({"kong": {"env": [{"name": f"V{i}", "value": ""} for i in range(65)]}}),
        "spec.kong.env",
    ),
    ("env-duplicate", stack(env("kong", ("A", "1"), ("A", "2"))), "spec.kong.env[1]"),
    ("env-not-list", stack({"kong": {"env": {"A": "1"}}}), "spec.kong.env"),
    # resources: Docker's floors, CPUs > 0, shape
    ("memory-5Mi", stack(res("redis", memory="5Mi")), "spec.redis.resources.memory"),
    ("memory-4MB", stack(res("kong", memory="4M")), "spec.kong.resources.memory"),
    ("memory-bytes", stack(res("nginx", memory="1024")), "spec.nginx.resources.memory"),
    ("memory-negative", stack(res("backend", memory="-256Mi")), "spec.backend.resources.memory"),
    ("cpu-zero", stack(res("kong", cpu="0")), "spec.kong.resources.cpu"),
    ("cpu-zero-milli", stack(res("redis", cpu="0m")), "spec.redis.resources.cpu"),
    ("cpu-negative", stack(res("nginx", cpu="-1")), "spec.nginx.resources.cpu"),
    ("cpu-below-docker", stack(res("backend", cpu="5m")), "spec.backend.resources.cpu"),
    ("cpu-newline", stack(res("backend", cpu="1\n")), "spec.backend.resources.cpu"),
    ("cpu-number", stack(res("kong", cpu=2)), "spec.kong.resources.cpu"),
    # ports and counts
    ("port-zero", stack({"redis": {"port": 0}}), "spec.redis.port"),
    ("port-70000", stack({"kong": {"proxyPort": 70000}}), "spec.kong.proxyPort"),
    ("port-negative", stack({"nginx": {"port": -1}}), "spec.nginx.port"),
    ("port-string", stack({"backend": {"port": "3000"}}), "spec.backend.port"),
    ("port-duplicate", stack({"nginx": {"port": 8000}}), "host ports must be distinct"),
    ("grace-zero", stack({"stopGracePeriodSeconds": 0}), "spec.stopGracePeriodSeconds"),
    (
        "ttl-huge",
        stack({"kong": {"masking": {"mappingTtlSeconds": 10**10}}}),
        "spec.kong.masking.mappingTtlSeconds",
    ),
    ("redis-db-16", stack({"redis": {"db": 16}}), "spec.redis.db"),
    # volume and network names Docker refuses
    (
        "volume-one-char",
        stack({"redis": {"persistence": {"volumeName": "v"}}}),
        "spec.redis.persistence.volumeName",
    ),
    (
        "volume-slash",
        stack({"redis": {"persistence": {"volumeName": "a/../b"}}}),
        "spec.redis.persistence.volumeName",
    ),
    (
        "volume-oversize",
        stack({"redis": {"persistence": {"volumeName": "v" * 201}}}),
        "spec.redis.persistence.volumeName",
    ),
    (
        "network-name-space",
        stack({"network": {"mode": "bridge", "name": "my net"}}),
        "spec.network.name",
    ),
    # Secret references, URLs, routes
    (
        "secret-name-upper",
        stack({"redis": {"passwordSecretRef": {"name": "Redis"}}}),
        "spec.redis.passwordSecretRef.name",
    ),
    (
        "secret-key-slash",
        stack({"upstream": {"apiKeySecretRef": {"name": "u", "key": "a/b"}}}),
        "spec.upstream.apiKeySecretRef.key",
    ),
    (
        "upstream-newline",
        stack({"upstream": {"url": "https://api.example.com/\nHost: x"}}),
        "spec.upstream.url",
    ),
    (
        "upstream-oversize",
        stack({"upstream": {"url": "https://h/" + "p" * 2100}}),
        "spec.upstream.url",
    ),
    ("model-space", stack({"upstream": {"model": "claude 3"}}), "spec.upstream.model"),
    ("route-newline", stack({"kong": {"routePaths": ["/v1\n"]}}), "spec.kong.routePaths[0]"),
    (
        "route-too-many",
        stack({"kong": {"routePaths": [f"/p{i}" for i in range(17)]}}),
        "spec.kong.routePaths",
    ),
    (
        "plugin-config-too-many",
        stack({"kong": {"plugin": {"config": {f"f{i}": 1 for i in range(25)}}}}),
        "spec.kong.plugin.config",
    ),
    (
        "plugin-config-string-oversize",
        stack({"kong": {"plugin": {"config": {"redis_host": "h" * 257}}}}),
        "spec.kong.plugin.config.redis_host",
    ),
    (
        "plugin-config-nested",
        stack({"kong": {"plugin": {"config": {"redis_host": {"x": "y" * 100_000}}}}}),
        "spec.kong.plugin.config.redis_host",
    ),
    (
        "plugin-config-list",
        stack({"kong": {"plugin": {"config": {"patterns": ["a"] * 1000}}}}),
        "spec.kong.plugin.config.patterns",
    ),
    (
        "plugin-config-newline",
        stack({"kong": {"plugin": {"config": {"redis_host": "h\nX: y"}}}}),
        "spec.kong.plugin.config.redis_host",
    ),
    # enums and types
    ("strategy-unknown", stack({"restartStrategy": "Rolling"}), "spec.restartStrategy"),
    ("network-mode-unknown", stack({"network": {"mode": "overlay"}}), "spec.network.mode"),
    (
        "profile-unknown",
        stack({"kong": {"plugin": {"profile": "enterprise3"}}}),
        "spec.kong.plugin.profile",
    ),
    (
        "severity-unknown",
        stack({"alerts": {"webhook": {"secretRef": {"name": "w"}, "minSeverity": "info"}}}),
        "spec.alerts.webhook.minSeverity",
    ),
    ("paused-string", stack({"paused": "yes"}), "spec.paused"),
    ("spec-not-object", stack("all"), "spec"),  # type: ignore[arg-type]
    ("maxmemory-newline", stack({"redis": {"maxMemory": "256mb\n"}}), "spec.redis.maxMemory"),
    ("body-size-oversize", stack({"kong": {"maxBodySize": "1" * 20}}), "spec.kong.maxBodySize"),
    # the stack's name feeds every Docker name
    ("name-64", stack({}, name="n" * 64), "metadata.name"),
    # StackBackup
    ("backup-type-unknown", backup({"type": "Snapshot"}), "spec.type"),
    ("backup-stackref-upper", backup({"stackRef": {"name": "Demo"}}), "spec.stackRef.name"),
    ("backup-stackref-newline", backup({"stackRef": {"name": "demo\n"}}), "spec.stackRef.name"),
    (
        "backup-path-relative",
        backup({"storage": {"directory": {"path": "backups"}}}),
        "spec.storage.directory.path",
    ),
    (
        "backup-path-newline",
        backup({"storage": {"directory": {"path": "/b\n/c"}}}),
        "spec.storage.directory.path",
    ),
    (
        "backup-path-nul",
        backup({"storage": {"directory": {"path": f"/b{NUL}"}}}),
        "spec.storage.directory.path",
    ),
    (
        "backup-bucket-upper",
        backup(
            {"storage": {"s3": {"bucket": "My_Bucket", "credentialsSecretRef": {"name": "s3"}}}}
        ),
        "spec.storage.s3.bucket",
    ),
    (
        "backup-endpoint-space",
        backup(
            {
                "storage": {
                    "s3": {
                        "bucket": "bkt",
                        "endpoint": "http://h x",
                        "credentialsSecretRef": {"name": "s3"},
                    }
                }
            }
        ),
        "spec.storage.s3.endpoint",
    ),
    (
        "backup-cron-newline",
        backup({"type": "Schedule", "schedule": {"cron": "* * * * *\n"}}),
        "spec.schedule.cron",
    ),
    (
        "backup-cron-oversize",
        backup({"type": "Schedule", "schedule": {"cron": "* " * 100}}),
        "spec.schedule.cron",
    ),
    (
        "backup-keeplast-zero",
        backup({"type": "Schedule", "schedule": {"cron": "@daily", "retention": {"keepLast": 0}}}),
        "spec.schedule.retention.keepLast",
    ),
    (
        "backup-maxage-bad",
        backup({"type": "Schedule", "schedule": {"cron": "@daily", "retention": {"maxAge": "1y"}}}),
        "spec.schedule.retention.maxAge",
    ),
    (
        "backup-restore-name-nul",
        backup({"type": "Restore", "restore": {"backupName": f"b{NUL}"}}),
        "spec.restore.backupName",
    ),
    (
        "backup-signing-key-space",
        backup({"signingSecretRef": {"name": "sig", "key": "a b"}}),
        "spec.signingSecretRef.key",
    ),
    ("backup-validate-string", backup({"validate": "true"}), "spec.validate"),
]

ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("longest-name", stack({}, name="a" * 62 + "z")),
    ("dotted-name", stack({}, name="a.b-c")),
    ("memory-at-floor", stack(res("redis", memory="6Mi", cpu="10m"))),
    ("address-ipv6", stack({"dockerHost": {"address": "::1"}})),
    ("address-fqdn", stack({"dockerHost": {"address": "docker-1.example.internal"}})),
    (
        "env-at-bound",
        stack({c: env(c, ("V", "✓" * 1023))[c] for c in ("redis", "kong", "nginx", "backend")}),
    ),
    ("env-multiline", stack(env("backend", ("PEM", "-----BEGIN-----\nabc\n-----END-----\n")))),
    ("image-digest", stack({"kong": {"image": "reg.local:5000/k/gw:3.9@sha256:" + "a" * 64}})),
    ("volume-two-chars", stack({"redis": {"persistence": {"volumeName": "v1"}}})),
    (
        "plugin-config-scalars",
        stack(
            {"kong": {"plugin": {"config": {"mask_ec2_instances": True, "redis_timeout": 2000}}}}
        ),
    ),
    ("ports-at-bounds", stack({"redis": {"port": 1024}, "backend": {"port": 65535}})),
    (
        "backup-schedule",
        backup(
            {
                "type": "Schedule",
                "schedule": {"cron": "*/5 * * * *", "retention": {"keepLast": 3, "maxAge": "7d"}},
            }
        ),
    ),
]


def _create(kubectl: Kubectl, obj: dict[str, Any]) -> Any:
    return kubectl(
        "create", "--dry-run=server", "-o", "name", "-f", "-", input=json.dumps(obj), check=False
    )


@pytest.mark.parametrize(("obj", "field"), [pytest.param(o, f, id=i) for i, o, f in REFUSED])
def test_hostile_spec_is_refused_naming_the_field(
    kubectl: Kubectl, stack_crd: None, obj: dict[str, Any], field: str
) -> None:
    out = _create(kubectl, obj)
    assert out.returncode != 0, f"accepted: {out.stdout}"
    error = out.stderr
    # Refused by admission (schema, CEL, strict decoding), not by anything else.
    assert "is invalid" in error or "BadRequest" in error, error
    assert field in error, error[:2000]


@pytest.mark.parametrize("obj", [pytest.param(o, id=i) for i, o in ACCEPTED])
def test_values_at_the_limits_are_accepted(
    kubectl: Kubectl, stack_crd: None, obj: dict[str, Any]
) -> None:
    out = _create(kubectl, obj)
    assert out.returncode == 0, out.stderr[:2000]


def test_there_are_enough_hostile_cases() -> None:
    assert len(REFUSED) >= 40 and len({i for i, _, _ in REFUSED}) == len(REFUSED)
