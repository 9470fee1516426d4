"""`kubectl kongmasker status NAME`: one screen about one stack, from its status, its
StackBackups and its Warning Events (no Docker access: it works wherever kubectl does).

    stack object + StackBackups + Events -> summary(dict) -> text | json | yaml
    exit 0 when Ready for the current generation, 1 otherwise (usable in CI)
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from kongmasker.api.vocabulary import START_ORDER
from kongmasker.cli.context import (
    EXIT_NOT_READY,
    EXIT_OK,
    Cluster,
    Stack,
    ago,
    event_time,
    fetch_metrics,
    operator_metrics_url,
)

WARNINGS_SHOWN = 5


def summary(cluster: Cluster, stack: Stack) -> dict[str, Any]:
    """Everything the screen shows, as data (`-o json|yaml` prints exactly this)."""
    st = stack.status
    watch = st.get("watch") or {}
    probes = watch.get("components") or {}
    comps = {}
    for comp in START_ORDER:
        c = (st.get("components") or {}).get(str(comp)) or {}
        # The watch's last record of a component that no longer exists is history, not health.
        p = probes.get(str(comp)) or {} if c.get("state") != "Absent" else {}
        comps[str(comp)] = {
            "state": c.get("state", "Unknown"),
            "health": c.get("health", ""),
            "message": c.get("message", ""),
            "image": c.get("image", ""),
            "containerName": c.get("containerName", ""),
            "startedAt": c.get("startedAt", ""),
            "uptime": ago(c.get("startedAt", "")) if c.get("state") != "Absent" else "-",
            "restartsInWindow": p.get("restartsInWindow", 0),
            "lastProbe": p.get("probe", ""),
            "lastProbeLatencySeconds": p.get("latencySeconds"),
        }
    backups = stack_backups(cluster.backups(stack.name))
    warnings = [
        {
            "time": event_time(e),
            "reason": e.get("reason", ""),
            "message": e.get("message", ""),
            "object": (e.get("involvedObject") or {}).get("name", ""),
            "count": e.get("count") or 1,
        }
        for e in cluster.events([stack.name, *backups.pop("_names")])
        if e.get("type") == "Warning"
    ][-WARNINGS_SHOWN:]
    return {
        "name": stack.name,
        "namespace": stack.namespace,
        "ready": stack.ready,
        "phase": st.get("phase", "Unknown"),
        "hibernated": stack.spec.hibernated,
        "generation": stack.obj["metadata"].get("generation"),
        "observedGeneration": st.get("observedGeneration"),
        "conditions": [
            {k: c.get(k, "") for k in ("type", "status", "reason", "message", "lastTransitionTime")}
            for c in st.get("conditions") or []
        ],
        "components": comps,
        "canary": {**(watch.get("canary") or {}), "types": canary_types(stack)},
        "endpoints": st.get("endpoints") or {},
        "backups": backups,
        "warnings": warnings,
    }


def canary_types(stack: Stack) -> dict[str, dict[str, float]]:
    """Per identifier type: canary checks and failures so far, from the operator's metrics
    (KONGMASKER_METRICS_URL); empty when they cannot be read."""
    url = operator_metrics_url(None)
    text = fetch_metrics(url) if url else None
    if not text:
        return {}
    from kongmasker.cli.monitor import parse

    out: dict[str, dict[str, float]] = {}
    for (metric, labels), value in parse(text).items():
        lab = dict(labels)
        if lab.get("namespace") != stack.namespace or lab.get("name") != stack.name:
            continue
        key = {
            "kongmasker_masking_checks_total": "checks",
            "kongmasker_masking_check_failures_total": "failures",
        }.get(metric)
        if key and "type" in lab:
            out.setdefault(lab["type"], {"checks": 0.0, "failures": 0.0})[key] += value
    return dict(sorted(out.items()))


def stack_backups(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Last completed, last validated, schedules (next run, retention) of one stack."""
    taken = [b for b in items if (b.get("spec") or {}).get("type", "Backup") == "Backup"]

    def newest(phases: set[str]) -> dict[str, Any] | None:
        done = [b for b in taken if (b.get("status") or {}).get("phase") in phases]
        if not done:
            return None
        b = max(done, key=lambda b: (b.get("status") or {}).get("completionTime") or "")
        s = b.get("status") or {}
        return {
            "name": b["metadata"]["name"],
            "phase": s.get("phase"),
            "completionTime": s.get("completionTime", ""),
            "age": ago(s.get("completionTime", "")),
            "size": s.get("size", ""),
            "keys": s.get("keys"),
            "location": s.get("location", ""),
        }

    schedules = [
        {
            "name": b["metadata"]["name"],
            "cron": ((b.get("spec") or {}).get("schedule") or {}).get("cron", ""),
            "suspended": bool(((b.get("spec") or {}).get("schedule") or {}).get("suspend")),
            "nextScheduleTime": (b.get("status") or {}).get("nextScheduleTime", ""),
            "lastScheduleTime": (b.get("status") or {}).get("lastScheduleTime", ""),
            "retention": ((b.get("spec") or {}).get("schedule") or {}).get("retention") or {},
        }
        for b in items
        if (b.get("spec") or {}).get("type") == "Schedule"
    ]
    return {
        "lastCompleted": newest({"Completed", "Validated"}),
        "lastValidated": newest({"Validated"}),
        "schedules": schedules,
        "count": len(taken),
        "_names": [b["metadata"]["name"] for b in items],
    }


def render_text(s: dict[str, Any]) -> str:
    lines = [
        f"Stack {s['namespace']}/{s['name']}: {s['phase']}"
        + ("" if s["ready"] else "  (not Ready)")
        + f"   generation {s['generation']}, observed {s['observedGeneration']}",
        "",
        "Conditions",
    ]
    for c in s["conditions"]:
        lines.append(
            f"  {c['type']:<16} {c['status']:<7} {c['reason']:<24} {c['message']}"
            f"  ({ago(c['lastTransitionTime'])} ago)"
        )
    lines += [
        "",
        "Components",
        f"  {'NAME':<8} {'STATE':<10} {'HEALTH':<9} {'UPTIME':<8} {'RESTARTS':<8} "
        f"{'PROBE':<14} IMAGE",
    ]
    for name, c in s["components"].items():
        lat = c["lastProbeLatencySeconds"]
        probe = f"{c['lastProbe'] or '-'}" + (f" {lat * 1000:.0f}ms" if lat is not None else "")
        lines.append(
            f"  {name:<8} {c['state']:<10} {c['health'] or '-':<9} {c['uptime']:<8} "
            f"{c['restartsInWindow']!s:<8} {probe:<14} {c['image'] or '-'}"
        )
    can = s["canary"]
    lines += ["", "Masking canary"]
    if can.get("lastRunTime"):
        lat = can.get("latencySeconds")
        lines.append(
            f"  {can.get('result', '-')} ({can.get('reason', '')}), "
            f"{can.get('typesChecked', 0)} identifier types, accuracy {can.get('accuracy', '-')}"
            + (f", {lat * 1000:.0f}ms" if lat is not None else "")
            + f", {ago(can.get('lastRunTime', ''))} ago"
        )
        types = can.get("types") or {}
        failing = sorted(t for t, c in types.items() if c.get("failures"))
        if types:
            lines.append(
                f"  per type: {len(types) - len(failing)} of {len(types)} never failed"
                + (f"; failed: {', '.join(failing)}" if failing else "")
            )
    else:
        lines.append("  no run yet")
    lines += ["", "Endpoints"]
    lines += [f"  {k:<11} {v}" for k, v in s["endpoints"].items()] or ["  -"]
    b = s["backups"]
    lines += ["", f"Backups ({b['count']} taken)"]
    for label, key in (("last completed", "lastCompleted"), ("last validated", "lastValidated")):
        item = b[key]
        lines.append(
            f"  {label:<15} "
            + (
                f"{item['name']} {item['phase']} {item['age']} ago, {item['size']}, "
                f"{item['keys']} keys"
                if item
                else "none"
            )
        )
    for sch in b["schedules"]:
        ret = ", ".join(f"{k} {v}" for k, v in sch["retention"].items()) or "keep all"
        nxt = "suspended" if sch["suspended"] else (sch["nextScheduleTime"] or "-")
        lines.append(f"  schedule {sch['name']} '{sch['cron']}': next {nxt}; retention {ret}")
    if not b["schedules"]:
        lines.append("  schedule        none")
    lines += ["", "Last Warning Events"]
    for w in s["warnings"]:
        lines.append(
            f"  {ago(w['time'])} ago  {w['object']}  {w['reason']}: {w['message']}"
            + (f" (x{w['count']})" if w["count"] > 1 else "")
        )
    if not s["warnings"]:
        lines.append("  none")
    return "\n".join(lines)


def run(cluster: Cluster, name: str, output: str) -> int:
    stack = Stack(cluster.stack(name))
    s = summary(cluster, stack)
    if output == "json":
        print(json.dumps(s, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(s, sort_keys=False), end="")
    else:
        print(render_text(s))
    return EXIT_OK if s["ready"] else EXIT_NOT_READY
