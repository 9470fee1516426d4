"""The operator where users run it: a Deployment on a kind cluster, installed with
`kubectl apply -k` from manifests/deploy/overlays/kind, with exactly the shipped RBAC, driving
the Docker engine of its node. One cluster and one sample stack for the whole suite; the tests
run in file order and each leaves the stack Ready for the next.

    make test-kind      (or `make test`, which runs every marker; CI never skips it)
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
import yaml
from tests.kind.kind_env import SA, SYSTEM_NS, Kind
from tests.support import REPO_ROOT, wait_until

pytestmark = pytest.mark.kind
NS = "default"
COMPONENTS = ("redis", "kong", "nginx", "backend")
LUA = REPO_ROOT / "manifests" / "argocd" / "health-kongmasker.lua"
AWS_ID = "i-1234567890abcdef0"
BACKUPS = "/var/lib/kongmasker/backups"


def _can_i_list(kind: Kind, namespace: str) -> dict[str, set[str]]:
    """`kubectl auth can-i --list` as the operator: resource -> verbs."""
    out = kind.kubectl("auth", "can-i", "--list", "--as", SA, "-n", namespace).stdout
    rules: dict[str, set[str]] = {}
    for line in out.splitlines()[1:]:
        cols = line.split()
        if not cols or not line.rstrip().endswith("]"):
            continue
        verbs = set(line[line.rindex("[") + 1 : line.rindex("]")].split())
        rules.setdefault(cols[0], set()).update(verbs)
    return rules


def test_operator_runs_as_a_deployment_with_the_shipped_rbac(kind: Kind) -> None:
    kind.wait_operator_available()
    deploy = kind.get("deployment", "kongmasker-operator", SYSTEM_NS)
    assert {c["type"]: c["status"] for c in deploy["status"]["conditions"]}["Available"] == "True"
    pod = kind.operator_pod()
    assert pod["spec"]["serviceAccountName"] == "kongmasker-operator"
    assert 101 in pod["spec"]["securityContext"]["supplementalGroups"], "the node's docker gid"

    # The role in the cluster is the one shipped in manifests/deploy/base, not a wider one.
    shipped = next(
        d
        for d in yaml.safe_load_all((REPO_ROOT / "manifests/deploy/base/rbac.yaml").read_text())
        if d and d["kind"] == "ClusterRole"
    )
    live = kind.get("clusterrole", "kongmasker-operator", "")
    assert live["rules"] == shipped["rules"]
    bindings = json.loads(
        kind.kubectl("get", "clusterrolebindings,rolebindings", "-A", "-o", "json").stdout
    )
    bound = [
        b["metadata"]["name"]
        for b in bindings["items"]
        if any(s.get("name") == "kongmasker-operator" for s in b.get("subjects") or [])
    ]
    assert bound == ["kongmasker-operator"], f"no extra binding for the operator: {bound}"

    rules = _can_i_list(kind, NS)
    print(json.dumps({k: sorted(v) for k, v in rules.items()}, indent=1))
    assert rules["secrets"] == {"get"}, "Secrets: get only, never list or watch"
    assert {"create", "delete"} <= rules["stackbackups.kongmasker.io"]
    assert "delete" not in rules["kongmaskerstacks.kongmasker.io"]


def test_sample_stack_ready_masks_and_shows_its_columns(kind: Kind, demo: dict[str, Any]) -> None:
    status = demo
    assert status["phase"] == "Ready" and status["readyComponents"] == "4/4", status
    masking = wait_until(
        lambda: (c := kind.condition("demo", NS, "MaskingVerified")).get("status") == "True" and c,
        timeout=120,
        what="MaskingVerified=True",
    )
    assert masking["reason"]
    table = kind.kubectl("get", "kongmaskerstack", "demo", "-n", NS).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "PHASE", "READY", "MASKING", "PROXY", "AGE"], header
    assert row.split()[:5] == ["demo", "Ready", "4/4", "True", status["endpoints"]["proxy"]], row

    # The masked round trip through the endpoint the status names, from the node's network.
    proxy = status["endpoints"]["proxy"]
    kind.http("DELETE", "http://127.0.0.1:18090/__requests")
    body = {
        "model": "m",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": f"why is {AWS_ID} slow?"}],
    }
    code, text = kind.http("POST", f"{proxy}/v1/messages", body)
    assert code == 200 and AWS_ID in text, text
    _, seen = kind.http("GET", "http://127.0.0.1:18090/__requests")
    assert AWS_ID not in seen and "AWS_EC2_" in seen, seen
    blob = json.dumps(status) + json.dumps(kind.events(NS, "demo"))
    assert "local-demo-redis-password" not in blob


def _health(obj: dict[str, Any]) -> tuple[str, str]:
    """The Argo CD health script, real Lua 5.1, on a live object (as JSON -> Lua table)."""

    def lua(v: Any) -> str:
        if v is None:
            return "nil"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "{" + ", ".join(lua(x) for x in v) + "}"
        return "{" + ", ".join(f"[{json.dumps(k)}] = {lua(x)}" for k, x in v.items()) + "}"

    harness = (
        f"obj = {lua(obj)}\nlocal hs = (function()\n{LUA.read_text()}\nend)()\n"
        'io.write(hs.status, "\\n", hs.message or "")\n'
    )
    out = subprocess.run(["lua5.1", "-"], input=harness, text=True, capture_output=True, check=True)
    status, _, message = out.stdout.partition("\n")
    return status, message


def _restart_count(kind: Kind, comp: str) -> int:
    c = kind.status("kongmaskerstack", "demo", NS).get("components", {}).get(comp, {})
    return int(c.get("restartCount") or 0)


def test_killed_component_heals_and_argocd_health_follows(kind: Kind, demo: dict[str, Any]) -> None:
    assert _health(kind.get("kongmaskerstack", "demo", NS))[0] == "Healthy"
    [kong] = kind.component(NS, "demo", "kong")
    before = _restart_count(kind, "kong")
    # SIGKILL of the process, as a crash or the OOM killer would end it (`docker kill` counts
    # as a manual stop, which Docker's restart policy leaves alone).
    kind.node("kill", "-KILL", str(kong["State"]["Pid"]))

    # Whatever the live object says while Kong is down, the health script agrees with it.
    def healed() -> bool:
        obj = kind.get("kongmaskerstack", "demo", NS)
        conds = {c["type"]: c["status"] for c in obj["status"].get("conditions", [])}
        if conds.get("Degraded") == "True":
            assert _health(obj)[0] == "Degraded", obj["status"]
        [c] = kind.component(NS, "demo", "kong")
        return (
            c["State"]["Running"]
            and c["State"]["StartedAt"] != kong["State"]["StartedAt"]
            and obj["status"].get("phase") == "Ready"
            and _restart_count(kind, "kong") > before
        )

    wait_until(healed, timeout=120, what="Kong restarted, counted in status, the stack Ready")
    [after] = kind.component(NS, "demo", "kong")
    assert after["Id"] == kong["Id"], "restarted in place"
    wait_until(
        lambda: any(e["reason"] == "ContainerExited" for e in kind.events(NS, "demo")),
        timeout=60,
        what="a ContainerExited Event",
    )
    assert _health(kind.get("kongmaskerstack", "demo", NS))[0] == "Healthy"


def test_removed_container_is_repaired(kind: Kind, demo: dict[str, Any]) -> None:
    [nginx] = kind.component(NS, "demo", "nginx")
    kind.docker("rm", "-f", nginx["Id"])

    def recreated() -> bool:
        found = kind.component(NS, "demo", "nginx")
        return len(found) == 1 and found[0]["Id"] != nginx["Id"] and found[0]["State"]["Running"]

    wait_until(recreated, timeout=120, what="nginx re-created")
    kind.wait_ready("demo", NS, timeout=120)
    proxy = kind.status("kongmaskerstack", "demo", NS)["endpoints"]["proxy"]
    body = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": AWS_ID}]}
    assert kind.http("POST", f"{proxy}/v1/messages", body)[0] == 200


def _redis_cli(kind: Kind, *args: str) -> str:
    [redis] = kind.component(NS, "demo", "redis")
    return kind.docker(
        "exec",
        "-e",
        "REDISCLI_AUTH=local-demo-redis-password",
        redis["Id"],
        "redis-cli",
        "-p",
        "6379",
        *args,
    ).strip()


def _backup(kind: Kind, name: str, spec: dict[str, Any]) -> None:
    obj = {
        "apiVersion": "kongmasker.io/v1alpha1",
        "kind": "StackBackup",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"stackRef": {"name": "demo"}, **spec},
    }
    kind.kubectl("apply", "-f", "-", input=json.dumps(obj))


def _wait_phase(
    kind: Kind, name: str, phases: tuple[str, ...], timeout: float = 180
) -> dict[str, Any]:
    return wait_until(
        lambda: (s := kind.status("stackbackup", name, NS)).get("phase") in phases and s,
        timeout=timeout,
        what=f"{name} in {phases}",
    )


def test_backup_validate_and_restore_in_place(kind: Kind, demo: dict[str, Any]) -> None:
    _redis_cli(kind, "SET", "aws_masker:map:AWS_EC2_KIND", "i-0aaaaaaaaaaaaaaa1")
    _backup(kind, "kind-b1", {"type": "Backup", "storage": {"directory": {"path": BACKUPS}}})
    status = _wait_phase(kind, "kind-b1", ("Validated", "Invalid", "Failed"))
    assert status["phase"] == "Validated", status
    assert status["keys"] >= 1 and status["location"].startswith("docker-host://")
    files = kind.node("find", f"{BACKUPS}/{NS}/demo/kind-b1", "-type", "f").split()
    assert any(f.endswith("manifest.json") for f in files), files

    _redis_cli(kind, "SET", "aws_masker:map:AWS_EC2_KIND", "changed")
    _backup(kind, "kind-r1", {"type": "Restore", "restore": {"backupName": "kind-b1"}})
    status = _wait_phase(kind, "kind-r1", ("Restored", "Failed", "Invalid"))
    assert status["phase"] == "Restored", status
    kind.wait_ready("demo", NS, timeout=180)
    assert _redis_cli(kind, "GET", "aws_masker:map:AWS_EC2_KIND") == "i-0aaaaaaaaaaaaaaa1"


def test_argocd_health_is_degraded_on_a_failed_backup(kind: Kind, demo: dict[str, Any]) -> None:
    # A directory the helper cannot write: the backup fails, and Argo CD must say so.
    _backup(kind, "kind-bad", {"type": "Backup", "storage": {"directory": {"path": "/proc/km"}}})
    _wait_phase(kind, "kind-bad", ("Failed", "Invalid", "PartiallyFailed"))
    status, message = _health(kind.get("stackbackup", "kind-bad", NS))
    assert status == "Degraded", message
    assert _health(kind.get("stackbackup", "kind-b1", NS))[0] == "Healthy"
    kind.kubectl("delete", "stackbackup", "kind-bad", "-n", NS, "--timeout=120s")


def test_schedule_creates_backups_and_retention_deletes_them(
    kind: Kind, demo: dict[str, Any]
) -> None:
    # Creating and deleting StackBackups is what the shipped role had to gain for this.
    _backup(
        kind,
        "kind-every10s",
        {
            "type": "Schedule",
            "storage": {"directory": {"path": BACKUPS}},
            "schedule": {"cron": "* * * * * */10", "retention": {"keepLast": 1}},
        },
    )
    made: set[str] = set()

    def children() -> list[str]:
        out = kind.kubectl(
            "get",
            "stackbackups",
            "-n",
            NS,
            "-l",
            "kongmasker.io/schedule=kind-every10s",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ).stdout.split()
        made.update(out)
        return out

    try:
        wait_until(
            lambda: len(made | set(children())) >= 2,
            timeout=150,
            what="two backups made by the schedule",
        )
        first = sorted(made)[0]
        wait_until(
            lambda: first not in children(),
            timeout=150,
            what=f"retention (keepLast 1) deleting {first}",
        )
        last = wait_until(
            lambda: kind.status("stackbackup", "kind-every10s", NS).get("lastSuccessfulBackup"),
            timeout=120,
            what="a validated scheduled backup",
        )
        assert last.startswith("kind-every10s-")
    finally:
        kind.kubectl(
            "delete", "stackbackup", "kind-every10s", "-n", NS, "--wait=true", "--timeout=120s"
        )


def _operator_pid(kind: Kind) -> str:
    pids = kind.node("pgrep", "-f", "bin/python -m kongmasker --all-namespaces").split()
    assert len(pids) == 1, pids
    return pids[0]


def test_liveness_restarts_a_stopped_operator_and_stacks_converge(
    kind: Kind, demo: dict[str, Any]
) -> None:
    pod = kind.operator_pod()
    restarts = pod["status"]["containerStatuses"][0]["restartCount"]
    kind.save_operator_log()
    pid = _operator_pid(kind)
    kind.node("kill", "-STOP", pid)
    try:
        wait_until(
            lambda: (
                kind.operator_pod()["status"]["containerStatuses"][0]["restartCount"] > restarts
            ),
            timeout=180,
            what="the kubelet restarting the operator after failed liveness probes",
        )
    finally:
        kind.node("kill", "-CONT", pid, check=False)
    events = kind.kubectl(
        "get",
        "events",
        "-n",
        SYSTEM_NS,
        "--field-selector",
        f"involvedObject.name={pod['metadata']['name']}",
        "-o",
        "json",
    ).stdout
    assert "Liveness probe failed" in events
    kind.wait_operator_available()
    assert _operator_pid(kind) != pid
    # The new process takes the stack over: a change made now is reconciled.
    [backend] = kind.component(NS, "demo", "backend")
    kind.docker("rm", "-f", backend["Id"])
    wait_until(
        lambda: len(kind.component(NS, "demo", "backend")) == 1,
        timeout=120,
        what="the restarted operator re-creating backend",
    )
    kind.wait_ready("demo", NS, timeout=120)


def _delete_operator_pod(kind: Kind) -> None:
    kind.save_operator_log()
    old = kind.operator_pod()["metadata"]["name"]
    kind.kubectl("delete", "pod", "-n", SYSTEM_NS, old, "--wait=false")
    wait_until(
        lambda: kind.operator_pod()["metadata"]["name"] != old,
        timeout=120,
        what="a new operator pod",
    )


def test_operator_pod_deleted_mid_create_and_mid_delete(kind: Kind, demo: dict[str, Any]) -> None:
    sample = list(yaml.safe_load_all((REPO_ROOT / "manifests/samples/stack.yaml").read_text()))
    stack = next(d for d in sample if d and d["kind"] == "KongMaskerStack")
    stack["metadata"]["name"] = "midway"
    spec = stack["spec"]
    spec["redis"]["port"], spec["kong"]["proxyPort"], spec["kong"]["adminPort"] = 6390, 8010, 8011
    spec["kong"]["statusPort"], spec["nginx"]["port"], spec["backend"]["port"] = 8110, 8095, 3010
    kind.kubectl("apply", "-f", "-", input=json.dumps(stack))
    wait_until(lambda: kind.containers(NS, "midway"), timeout=120, what="midway's first container")
    _delete_operator_pod(kind)
    kind.wait_ready("midway", NS, timeout=240)
    for comp in COMPONENTS:
        assert len(kind.component(NS, "midway", comp)) == 1, f"one {comp}, no duplicate"

    kind.kubectl("delete", "kongmaskerstack", "midway", "-n", NS, "--wait=false")
    wait_until(
        lambda: len([c for c in kind.containers(NS, "midway") if c["State"]["Running"]]) < 4,
        timeout=120,
        what="midway's stop under way",
    )
    _delete_operator_pod(kind)
    kind.kubectl("wait", "--for=delete", "kongmaskerstack/midway", "-n", NS, "--timeout=240s")
    assert kind.containers(NS, "midway") == [], "no container left behind"
    kind.wait_operator_available()


def test_delete_stops_in_reverse_order_and_saves_redis(kind: Kind, demo: dict[str, Any]) -> None:
    _redis_cli(kind, "SET", "aws_masker:map:AWS_EC2_KEEP", "i-0bbbbbbbbbbbbbbb2")
    since = str(int(time.time()))
    kind.kubectl("delete", "kongmaskerstack", "demo", "-n", NS, "--timeout=240s")
    assert kind.containers(NS, "demo") == []
    dies = kind.docker(
        "events",
        "--since",
        since,
        "--until",
        str(int(time.time()) + 1),
        "--filter",
        "event=die",
        "--filter",
        f"label=kongmasker.io/stack-namespace={NS}",
        "--filter",
        "label=kongmasker.io/stack-name=demo",
        "--format",
        '{{index .Actor.Attributes "kongmasker.io/component"}}',
    ).split()
    assert dies == ["backend", "nginx", "kong", "redis"], dies
    stopped = [e["message"] for e in kind.events(NS, "demo") if e["reason"] == "Stopped"]
    assert any("Redis saved (LASTSAVE" in m for m in stopped), stopped
    # The data outlives the stack: a new stack of the same name finds it again.
    kind.kubectl("apply", "-f", str(REPO_ROOT / "manifests/samples/stack.yaml"))
    kind.wait_ready("demo", NS)
    assert _redis_cli(kind, "GET", "aws_masker:map:AWS_EC2_KEEP") == "i-0bbbbbbbbbbbbbbb2"


def _audit(kind: Kind) -> list[dict[str, Any]]:
    raw = kind.node("cat", "/var/log/kubernetes/audit.log")
    return [e for e in map(json.loads, raw.splitlines()) if e.get("user", {}).get("username") == SA]


def _allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r.get("apiGroups", [])
        and resource in r.get("resources", [])
        and verb in r.get("verbs", [])
        for r in rules
    )


def test_every_api_call_of_the_suite_was_allowed_by_the_shipped_role(kind: Kind) -> None:
    """Last: the audit log of the whole suite (hack/kind/audit/policy.yaml) holds every call
    the operator and kopf made; each must be granted by the shipped role and none refused;
    and the operator's logs (every pod of the suite) hold no authorization error."""
    shipped = next(
        d
        for d in yaml.safe_load_all((REPO_ROOT / "manifests/deploy/base/rbac.yaml").read_text())
        if d and d["kind"] == "ClusterRole"
    )["rules"]
    calls: dict[tuple[str, str, str], int] = {}
    refused = []
    for e in _audit(kind):
        ref = e.get("objectRef") or {}
        if not ref.get("resource"):
            continue  # discovery (/api, /apis): every authenticated user may
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        key = (ref.get("apiGroup", ""), resource, e["verb"])
        calls[key] = calls.get(key, 0) + 1
        if e.get("responseStatus", {}).get("code") == 403:
            refused.append(key)
    print("API calls of the operator over the suite (group, resource, verb): count")
    for key, n in sorted(calls.items()):
        print(f"  {key}: {n}")
    assert calls, "the audit log holds no call of the operator"
    assert not refused, f"refused: {sorted(set(refused))}"
    assert [k for k in calls if not _allowed(shipped, *k)] == []
    assert ("kongmasker.io", "stackbackups", "create") in calls
    assert ("kongmasker.io", "stackbackups", "delete") in calls
    assert not [k for k in calls if k[1] == "secrets" and k[2] != "get"]

    logs = "\n".join([*kind.saved_logs, kind.operator_log(), kind.operator_log(previous=True)])
    bad = [line for line in logs.splitlines() if "forbidden" in line.lower() or " 403" in line]
    assert not bad, "\n".join(bad[:20])
