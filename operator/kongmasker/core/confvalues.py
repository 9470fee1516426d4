"""Values that end up in configuration files are checked before any container is touched.

The Redis image writes its environment into redis.conf (images/redis/entrypoint.sh). Each
variable it reads is checked here against what its directive accepts; the password is
written quoted by the image, so only what a quoted Redis string cannot carry (line breaks,
NUL) is refused. A refusal names the field and the fix and never echoes the value.

    rendered Redis env (operator wiring + spec.redis.env + Secret) -> check_redis_env
      -> ok | PreflightFailed(InvalidConfigValue, "<field>: <rule>")

Kong's declarative config and nginx.conf are rendered from CRD-validated fields (YAML is
written by a serializer; nginx values are integers or pattern-checked), so they need no
second check here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kongmasker.api.vocabulary import Reason
from kongmasker.errors import PreflightFailed

LOG_LEVELS = ("debug", "verbose", "notice", "warning", "nothing")
_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "REDIS_LOGLEVEL": (
        re.compile(rf"({'|'.join(LOG_LEVELS)})"),
        f"must be one of {', '.join(LOG_LEVELS)}",
    ),
    "REDIS_MAXMEMORY": (re.compile(r"[0-9]+(kb|mb|gb|KB|MB|GB|b|B)?"), "must look like 256mb"),
    "REDIS_APPENDONLY": (re.compile(r"yes|no"), "must be yes or no"),
    "REDIS_PORT": (re.compile(r"[0-9]{1,5}"), "must be a port number"),
    "REDIS_BIND": (re.compile(r"[0-9a-fA-F.:]+( [0-9a-fA-F.:]+)*"), "must be IP addresses"),
}
_UNQUOTABLE = re.compile(r"[\r\n\x00]")


def check_redis_env(env: Mapping[str, str], user_env: Mapping[str, str]) -> None:
    """Raise PreflightFailed naming the field if a value cannot go into redis.conf.

    `user_env` is spec.redis.env (to say which field a bad value came from)."""
    for key, (pattern, rule) in _RULES.items():
        if key in env and not pattern.fullmatch(env[key]):
            field = f"spec.redis.env[{key}]" if key in user_env else key
            raise PreflightFailed(
                f"{field} {rule} (it is written into redis.conf); fix the value",
                reason=Reason.INVALID_CONFIG_VALUE,
            )
    password = env.get("REDIS_PASSWORD", "")
    if _UNQUOTABLE.search(password):
        field = (
            "spec.redis.env[REDIS_PASSWORD]"
            if "REDIS_PASSWORD" in user_env
            else "the Secret named by spec.redis.passwordSecretRef"
        )
        raise PreflightFailed(
            f"{field}: the Redis password contains a line break or NUL character, which "
            "redis.conf cannot hold; spaces, quotes and backslashes are fine. Set a password "
            "without them",
            reason=Reason.INVALID_CONFIG_VALUE,
        )
