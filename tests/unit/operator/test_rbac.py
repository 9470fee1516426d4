"""The shipped ClusterRole (manifests/deploy/base/rbac.yaml) is derived from the code: the
Kubernetes client calls of the operator's adapters (read from their source with `ast`) plus
the calls kopf makes in the way the operator runs it (cluster-wide, standalone, progress in
annotations), each pinned to the kopf source that makes it. The role must grant exactly that
set: a new client call without its rule fails here, and so does a rule nothing uses. The kind
suite checks the same role against the API server's audit log of a real run."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import kopf
import pytest
import yaml
from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit
ADAPTERS = REPO_ROOT / "operator" / "kongmasker" / "adapters"
KOPF = Path(kopf.__file__).parent

# kubernetes-client method -> (API group, verb, subresource); custom-object methods take the
# plural as an argument, resolved from the code.
CORE = {"read_namespaced_secret": ("", "secrets", "get")}
CUSTOM = {
    "get_namespaced_custom_object": ("get", ""),
    "list_namespaced_custom_object": ("list", ""),
    "list_cluster_custom_object": ("list", ""),
    "create_namespaced_custom_object": ("create", ""),
    "delete_namespaced_custom_object": ("delete", ""),
    "patch_namespaced_custom_object": ("patch", ""),
    "patch_namespaced_custom_object_status": ("patch", "/status"),
}
Call = tuple[str, str, str]  # (group, resource, verb)


def _code_calls() -> set[Call]:
    calls: set[Call] = set()
    for path in sorted(ADAPTERS.glob("*.py")):
        tree = ast.parse(path.read_text())
        module = importlib.import_module(f"kongmasker.adapters.{path.stem}")
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            if not (isinstance(owner, ast.Attribute) and owner.attr in ("_core", "_custom")):
                continue
            method = node.func.attr
            if owner.attr == "_core":
                assert method in CORE, f"{path.name}: map CoreV1Api.{method} to its RBAC verb here"
                calls.add(CORE[method])
                continue
            assert method in CUSTOM, f"{path.name}: map CustomObjectsApi.{method} here"
            verb, sub = CUSTOM[method]
            group_arg, plural_arg = node.args[0], node.args[2 if "cluster" in method else 3]
            assert isinstance(group_arg, ast.Name) and isinstance(plural_arg, ast.Name)
            group, plural = getattr(module, group_arg.id), getattr(module, plural_arg.id)
            calls.add((group, plural + sub, verb))
    return calls


def _kopf_calls(group: str, plurals: list[str]) -> set[Call]:
    """What kopf does with `kopf.run(standalone=True, clusterwide=True)`, each tied to the
    source line that does it (a kopf upgrade that changes one fails here)."""
    src = {p: (KOPF / p).read_text() for p in (
        "_cogs/clients/watching.py", "_cogs/clients/fetching.py", "_cogs/clients/patching.py",
        "_cogs/clients/events.py", "_core/reactor/observation.py", "_cogs/structs/references.py",
    )}  # fmt: skip
    # Watches list first, then stream with ?watch=true: list + watch of every served resource.
    assert "params['watch'] = 'true'" in src["_cogs/clients/watching.py"]
    assert "api.get(" in src["_cogs/clients/fetching.py"]
    # Finalizers and the progress/diff-base annotations are PATCHes of the object.
    assert "api.patch(" in src["_cogs/clients/patching.py"]
    # Events: POSTed to core v1 events.
    assert "EVENTS = Selector('v1', 'events')" in src["_cogs/structs/references.py"]
    assert "api.post(" in src["_cogs/clients/events.py"]
    # The resource observer watches CRDs; the namespace observer lists/watches namespaces
    # only when not cluster-wide (so the Deployment's --all-namespaces needs none).
    obs = src["_core/reactor/observation.py"]
    assert "wait_for(references.CRDS)" in obs
    assert "if not settings.scanning.disabled and not clusterwide:" in obs
    calls = {("", "events", "create"),
             ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
             ("apiextensions.k8s.io", "customresourcedefinitions", "watch")}  # fmt: skip
    for plural in plurals:
        calls |= {(group, plural, "list"), (group, plural, "watch"), (group, plural, "patch")}
    return calls


def _role() -> set[Call]:
    docs = yaml.safe_load_all((REPO_ROOT / "manifests/deploy/base/rbac.yaml").read_text())
    [role] = [d for d in docs if d and d["kind"] == "ClusterRole"]
    return {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def test_the_shipped_role_is_exactly_what_the_code_and_kopf_call() -> None:
    from kongmasker.api.backup import BACKUP_PLURAL
    from kongmasker.api.vocabulary import GROUP, PLURAL

    code = _code_calls()
    assert (GROUP, BACKUP_PLURAL, "create") in code and (GROUP, BACKUP_PLURAL, "delete") in code
    needed = code | _kopf_calls(GROUP, [PLURAL, BACKUP_PLURAL])
    role = _role()
    assert sorted(needed - role) == [], "calls the role does not grant"
    assert sorted(role - needed) == [], "grants nothing calls: remove them"


def test_secrets_are_read_one_by_one_never_listed_or_watched() -> None:
    assert {v for g, r, v in _role() if r == "secrets"} == {"get"}


def test_the_deployment_runs_cluster_wide_as_the_role_assumes() -> None:
    docs = yaml.safe_load((REPO_ROOT / "manifests/deploy/base/deployment.yaml").read_text())
    [container] = docs["spec"]["template"]["spec"]["containers"]
    assert "--all-namespaces" in container["args"]
