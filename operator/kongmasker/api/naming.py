"""The one owner of Docker object names: every container and volume name of a stack is
derived here, and nothing else spells one (tests included: they call these functions).

    (namespace, name) --stack_prefix--> km-<len(ns)>-<ns>-<name>
                      --container_name--> <prefix>-<component>
                      --redis_volume-->    <prefix>-redis

The length of the namespace is part of the name, so the encoding is unambiguous:
`adv-7/x-y` -> `km-5-adv-7-x-y-...` and `adv-7-x/y` -> `km-7-adv-7-x-y-...`. Reading the
digits, then that many characters, gives the namespace back; the rest is the name. Names stay
readable for people (the labels carry namespace, name and uid as well), are deterministic
(a re-created stack of the same namespace/name finds its volume again), and never start
like the throwaway `km-scratch-...` names (a digit follows `km-`).

`legacy_*` spell the names of the previous scheme (`km-<ns>-<name>-<component>`, which
collided); only the migration of existing stacks (core/migrate.py) uses them.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "km"
SURGE_SUFFIX: Final = "-surge"
"""A graceful handover's replacement is `<container name>-surge` until it is renamed."""


def stack_prefix(namespace: str, name: str) -> str:
    return f"{PREFIX}-{len(namespace)}-{namespace}-{name}"


def container_name(namespace: str, name: str, component: str) -> str:
    return f"{stack_prefix(namespace, name)}-{component}"


def redis_volume(namespace: str, name: str) -> str:
    """Default /data volume of the stack's Redis (spec.redis.persistence.volumeName unset)."""
    return f"{stack_prefix(namespace, name)}-redis"


def surge_name(container: str) -> str:
    return container + SURGE_SUFFIX


def parse_prefix(prefix: str) -> tuple[str, str]:
    """(namespace, name) back from `stack_prefix`; raises ValueError if it is not one.

    >>> parse_prefix(stack_prefix("adv-7", "x-y")), parse_prefix(stack_prefix("adv-7-x", "y"))
    (('adv-7', 'x-y'), ('adv-7-x', 'y'))
    """
    head, _, rest = prefix.partition("-")
    digits, _, rest = rest.partition("-")
    if head != PREFIX or not digits.isdigit():
        raise ValueError(f"{prefix!r} is not a stack name prefix")
    n = int(digits)
    namespace, sep, name = rest[:n], rest[n : n + 1], rest[n + 1 :]
    if len(namespace) != n or sep != "-" or not name:
        raise ValueError(f"{prefix!r} is not a stack name prefix")
    return namespace, name


def legacy_container_name(namespace: str, name: str, component: str) -> str:
    """The previous scheme's container name (ambiguous; migration only)."""
    return f"{PREFIX}-{namespace}-{name}-{component}"


def legacy_redis_volume(namespace: str, name: str) -> str:
    """The previous scheme's volume name (ambiguous; migration only)."""
    return f"{PREFIX}-{namespace}-{name}-redis"
