"""The Kubernetes client calls core needs: read Secret keys and patch a stack's status.

kopf owns the watch; this module (kubernetes client) only does the few direct calls.
ApiException is translated into kongmasker.errors here.
"""

from __future__ import annotations

import base64
import os
from typing import Any, Protocol

import kubernetes
from kubernetes.client.exceptions import ApiException

from kongmasker import redaction
from kongmasker.api.vocabulary import GROUP, PLURAL, VERSION
from kongmasker.errors import NotFound, TransientError


class SecretReader(Protocol):
    def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        """Decoded data of a Secret; raises NotFound if it does not exist."""
        ...


class StatusWriter(Protocol):
    def get_stack(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...


class KubeClient:
    """Real client from a kubeconfig (KUBECONFIG or ~/.kube/config) or in-cluster config."""

    def __init__(self) -> None:
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            # Read KUBECONFIG now: the library's default was fixed when it was imported.
            kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        self._core = kubernetes.client.CoreV1Api()
        self._custom = kubernetes.client.CustomObjectsApi()

    def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        try:
            secret = self._core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"Secret {namespace}/{name} not found") from exc
            raise TransientError(f"reading Secret {namespace}/{name}: HTTP {exc.status}") from exc
        data = secret.data or {}
        out = {k: base64.b64decode(v) for k, v in data.items()}
        for k, v in (secret.string_data or {}).items():
            out[k] = v.encode()
        for value in out.values():
            redaction.remember(value)  # before any of it can be echoed in an error
        return out

    def get_stack(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The current KongMaskerStack object, or None if it is gone."""
        try:
            obj = self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise TransientError(f"reading {namespace}/{name}: HTTP {exc.status}") from exc
        return dict(obj)  # type: ignore[call-overload]

    def list_stack_uids(self, namespaces: tuple[str, ...] = ()) -> set[str]:
        """UIDs of every KongMaskerStack (in `namespaces`, or cluster-wide)."""
        try:
            if not namespaces:
                found = self._custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
                items = found.get("items", [])  # type: ignore[attr-defined]
            else:
                items = []
                for ns in namespaces:
                    found = self._custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
                    items.extend(found.get("items", []))  # type: ignore[attr-defined]
        except ApiException as exc:
            raise TransientError(f"listing stacks: HTTP {exc.status}") from exc
        return {str(i["metadata"]["uid"]) for i in items}

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": status}
            )
        except ApiException as exc:
            if exc.status == 404:
                return  # deleted meanwhile: nothing to report on
            raise TransientError(
                f"patching status of {namespace}/{name}: HTTP {exc.status}"
            ) from exc
