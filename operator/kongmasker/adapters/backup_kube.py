"""Kubernetes calls of the StackBackup controller: read, list, create, delete StackBackup
objects and patch their status. kopf owns the watch; these are the direct calls core makes
(status is patched as work progresses, not only when a handler returns).

ApiException is translated here: 404 -> NotFound (or None for reads), other -> TransientError.
"""

from __future__ import annotations

from typing import Any, Protocol

import kubernetes
from kubernetes.client.exceptions import ApiException

from kongmasker.api.backup import BACKUP_PLURAL
from kongmasker.api.vocabulary import GROUP, VERSION
from kongmasker.errors import NotFound, TransientError


class BackupApi(Protocol):
    def get_backup(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list_backups(self, namespace: str, label_selector: str) -> list[dict[str, Any]]: ...

    def create_backup(self, namespace: str, body: dict[str, Any]) -> bool:
        """Create; False if an object of that name exists already."""
        ...

    def delete_backup(self, namespace: str, name: str) -> None: ...

    def detach_backup(self, namespace: str, name: str, label: str) -> None:
        """Drop the owner references and the `label` of a backup (it outlives its schedule)."""
        ...

    def patch_backup_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...


class KubeBackupApi:
    """The real client (kubeconfig or in-cluster config, as kongmasker.adapters.kube)."""

    def __init__(self) -> None:
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()
        self._custom = kubernetes.client.CustomObjectsApi()

    def get_backup(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, BACKUP_PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _transient("reading", namespace, name, exc) from exc
        return dict(obj)  # type: ignore[call-overload]

    def list_backups(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        try:
            found = self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, BACKUP_PLURAL, label_selector=label_selector
            )
        except ApiException as exc:
            raise _transient("listing", namespace, label_selector, exc) from exc
        items: list[dict[str, Any]] = found.get("items", [])  # type: ignore[attr-defined]
        return [dict(item) for item in items]

    def create_backup(self, namespace: str, body: dict[str, Any]) -> bool:
        try:
            self._custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, BACKUP_PLURAL, body
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise _transient("creating", namespace, body["metadata"]["name"], exc) from exc
        return True

    def delete_backup(self, namespace: str, name: str) -> None:
        try:
            self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, BACKUP_PLURAL, name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise _transient("deleting", namespace, name, exc) from exc

    def detach_backup(self, namespace: str, name: str, label: str) -> None:
        patch = {"metadata": {"ownerReferences": None, "labels": {label: None}}}
        try:
            self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, BACKUP_PLURAL, name, patch
            )
        except ApiException as exc:
            if exc.status != 404:
                raise _transient("detaching", namespace, name, exc) from exc

    def patch_backup_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, BACKUP_PLURAL, name, {"status": status}
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"StackBackup {namespace}/{name} is gone") from exc
            raise _transient("patching status of", namespace, name, exc) from exc


def _transient(verb: str, namespace: str, name: str, exc: ApiException) -> TransientError:
    return TransientError(f"{verb} StackBackup {namespace}/{name}: HTTP {exc.status}")
