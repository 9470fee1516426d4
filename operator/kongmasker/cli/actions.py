"""The verbs that change something: each writes exactly what a user would write with kubectl
(docs/operator.md, docs/backup.md), then optionally waits, printing each step as it happens.

    restart NAME [--graceful]     annotation kongmasker.io/restartedAt (+ spec.restartStrategy)
    backup NAME                   a StackBackup of type Backup
    restore NAME --from BACKUP    a StackBackup of type Restore
    hibernate on|off NAME         spec.hibernated true | false
    hibernate status NAME         phase and what exists
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kongmasker.api.backup import BACKUP_KIND, TERMINAL_PHASES
from kongmasker.api.vocabulary import GROUP, RESTART_ANNOTATION, VERSION, Phase
from kongmasker.cli.context import (
    EXIT_NOT_READY,
    EXIT_OK,
    CliError,
    Cluster,
    Stack,
    now,
)

POLL_SECONDS = 0.5
BACKUP_OK = frozenset({"Completed", "Validated", "Restored"})


def _stamp() -> str:
    return now().strftime("%Y%m%d%H%M%S")


def wait_for(
    what: str,
    read: Callable[[], tuple[str, bool | None]],
    timeout: float,
) -> bool:
    """Poll `read` -> (progress text, done: True ok / False failed / None not yet); print
    each new progress text with the elapsed time."""
    started = time.monotonic()
    last = ""
    while True:
        text, done = read()
        if text != last:
            print(f"  [{time.monotonic() - started:5.1f}s] {text}", flush=True)
            last = text
        if done is not None:
            return done
        if time.monotonic() - started > timeout:
            print(f"  gave up waiting for {what} after {timeout:.0f}s", flush=True)
            return False
        time.sleep(POLL_SECONDS)


def _stack_progress(cluster: Cluster, name: str, until: Callable[[Stack], bool | None]) -> Any:
    def read() -> tuple[str, bool | None]:
        stack = Stack(cluster.stack(name))
        st = stack.status
        ready = stack.condition("Ready")
        prog = stack.condition("Progressing")
        text = (
            f"phase {st.get('phase', '-')}, ready {st.get('readyComponents', '-')}: "
            f"{prog.get('message') or ready.get('message') or ''}"
        )
        return text, until(stack)

    return read


def restart(cluster: Cluster, name: str, graceful: bool, wait: bool, timeout: float) -> int:
    stack = Stack(cluster.stack(name))
    if stack.spec.hibernated:
        raise CliError(f"stack {name} is hibernated; wake it with `hibernate off {name}`")
    value = now().isoformat(timespec="seconds")
    body: dict[str, Any] = {"metadata": {"annotations": {RESTART_ANNOTATION: value}}}
    strategy = stack.spec.restart_strategy
    if graceful and strategy != "Graceful":
        body["spec"] = {"restartStrategy": "Graceful"}
        print(f"spec.restartStrategy: {strategy} -> Graceful (kept for later restarts)")
    cluster.patch_stack(name, body)
    print(
        f"kongmaskerstack/{name} annotated {RESTART_ANNOTATION}={value} "
        f"({'Graceful' if graceful else strategy})"
    )
    if not wait:
        return EXIT_OK

    def done(s: Stack) -> bool | None:
        if s.status.get("restartedAt") == value:
            return True if s.ready else (False if s.status.get("phase") == "Degraded" else None)
        return None

    ok = wait_for("the restart", _stack_progress(cluster, name, done), timeout)
    print("restarted" if ok else "restart did not finish Ready")
    return EXIT_OK if ok else EXIT_NOT_READY


def _backup_progress(cluster: Cluster, name: str) -> Callable[[], tuple[str, bool | None]]:
    def read() -> tuple[str, bool | None]:
        b = cluster.backup(name)
        s = b.get("status") or {}
        phase = s.get("phase") or "New"
        bits = [f"phase {phase}"]
        for key in ("size", "keys", "location", "failureReason"):
            if s.get(key):
                bits.append(f"{key} {s[key]}")
        done: bool | None = None
        validate = (b.get("spec") or {}).get("validate", True)
        if phase in TERMINAL_PHASES:
            done = phase in BACKUP_OK
        elif phase == "Completed" and not validate:
            done = True
        return ", ".join(bits), done

    return read


def backup(
    cluster: Cluster,
    name: str,
    backup_name: str | None,
    directory: str | None,
    wait: bool,
    timeout: float,
) -> int:
    Stack(cluster.stack(name))  # fails clearly for an unknown stack
    bname = backup_name or f"{name}-{_stamp()}"
    spec: dict[str, Any] = {"stackRef": {"name": name}, "type": "Backup"}
    if directory:
        spec["storage"] = {"directory": {"path": directory}}
    cluster.create_backup(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": BACKUP_KIND,
            "metadata": {"name": bname, "namespace": cluster.namespace},
            "spec": spec,
        }
    )
    print(f"stackbackup/{bname} created (type Backup of stack {name})")
    if not wait:
        return EXIT_OK
    ok = wait_for(f"backup {bname}", _backup_progress(cluster, bname), timeout)
    return EXIT_OK if ok else EXIT_NOT_READY


def restore(
    cluster: Cluster, name: str, source: str, restore_name: str | None, wait: bool, timeout: float
) -> int:
    Stack(cluster.stack(name))
    cluster.backup(source)  # an unknown backup fails here, not as a Restore stuck in New
    rname = restore_name or f"{name}-restore-{_stamp()}"
    cluster.create_backup(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": BACKUP_KIND,
            "metadata": {"name": rname, "namespace": cluster.namespace},
            "spec": {
                "stackRef": {"name": name},
                "type": "Restore",
                "restore": {"backupName": source},
            },
        }
    )
    print(f"stackbackup/{rname} created (type Restore of {source} into stack {name})")
    if not wait:
        return EXIT_OK
    ok = wait_for(f"restore {rname}", _backup_progress(cluster, rname), timeout)
    return EXIT_OK if ok else EXIT_NOT_READY


def hibernate(cluster: Cluster, mode: str, name: str, wait: bool, timeout: float) -> int:
    stack = Stack(cluster.stack(name))
    if mode == "status":
        hib = stack.spec.hibernated
        phase = stack.status.get("phase", "-")
        print(f"stack {name}: spec.hibernated {str(hib).lower()}, phase {phase}")
        if hib and phase == Phase.HIBERNATED:
            print("  hibernated: no container runs; the Redis data volume is kept")
        elif hib:
            print("  hibernating: the operator is stopping the stack")
        return EXIT_OK if (hib and phase == Phase.HIBERNATED) or (not hib) else EXIT_NOT_READY
    on = mode == "on"
    cluster.patch_stack(name, {"spec": {"hibernated": on}})
    print(f"kongmaskerstack/{name} spec.hibernated={str(on).lower()}")
    if not wait:
        return EXIT_OK
    generation = int(cluster.stack(name)["metadata"].get("generation", 0) or 0)

    def done(s: Stack) -> bool | None:
        if int(s.status.get("observedGeneration", 0) or 0) < generation:
            return None
        if on:
            return True if s.status.get("phase") == Phase.HIBERNATED else None
        return True if s.ready else None

    ok = wait_for(
        "hibernation" if on else "the start", _stack_progress(cluster, name, done), timeout
    )
    print(("hibernated" if on else "awake and Ready") if ok else "did not finish")
    return EXIT_OK if ok else EXIT_NOT_READY
