"""kubectl-kongmasker: the day-2 verbs (see docs/kubectl-plugin.md)."""
