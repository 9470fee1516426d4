"""The shipped manifests against the real kube-apiserver: the sample stack validates against
the CRD (schema and CEL), and the operator's ServiceAccount may do exactly what the operator
needs (checked with `kubectl auth can-i` impersonating it)."""

from __future__ import annotations

import json

import pytest
import yaml
from tests.support import REPO_ROOT

pytestmark = pytest.mark.e2e
SA = "system:serviceaccount:kongmasker-system:kongmasker-operator"


def test_sample_stack_is_valid(kubectl, stack_crd) -> None:  # type: ignore[no-untyped-def]
    out = kubectl(
        "apply", "--dry-run=server", "-f", str(REPO_ROOT / "manifests/samples/stack.yaml")
    )
    assert "kongmaskerstack.kongmasker.io/demo" in out.stdout


def test_operator_rbac_allows_what_the_operator_does(kubectl, stack_crd) -> None:  # type: ignore[no-untyped-def]
    # The shipped base as kustomize renders it, but the CRDs (the fixture owns them) and the
    # Deployment (this API server has no kubelet to run it; the kind suite runs it).
    rendered = kubectl("kustomize", str(REPO_ROOT / "manifests/deploy")).stdout
    skip = {"Deployment", "CustomResourceDefinition"}
    kept = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] not in skip]
    kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": kept})
    )
    needed = [
        ("watch", "kongmaskerstacks.kongmasker.io"),
        ("patch", "kongmaskerstacks.kongmasker.io"),
        ("patch", "kongmaskerstacks.kongmasker.io/status"),
        ("get", "secrets"),
        ("create", "events"),
        ("create", "stackbackups.kongmasker.io"),
        ("delete", "stackbackups.kongmasker.io"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ]
    for verb, resource in needed:
        res = kubectl("auth", "can-i", verb, resource, "--as", SA, "-A", check=False)
        assert res.stdout.strip() == "yes", f"{verb} {resource}: {res.stdout} {res.stderr}"
    denied = [
        ("list", "secrets"),
        ("watch", "secrets"),
        ("delete", "secrets"),
        ("update", "secrets"),
        ("create", "pods"),
        ("delete", "kongmaskerstacks.kongmasker.io"),
    ]
    for verb, resource in denied:
        res = kubectl("auth", "can-i", verb, resource, "--as", SA, "-A", check=False)
        assert res.stdout.strip() == "no", f"{verb} {resource} must be denied"
