"""The operator's logic: render, plan, apply, health gates, preflight, status. Sees the
container engine only through the Runtime protocol (never docker) and never imports kopf."""
