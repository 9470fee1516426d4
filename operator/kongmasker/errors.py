"""The operator's exception tree; foreign errors (docker, kubernetes, HTTP) are mapped to it
at the adapter boundary so that core and handlers only ever see these.

    KongMaskerError
    ├── TransientError              retry later (kopf.TemporaryError in handlers)
    │   ├── RuntimeUnavailable      the Docker engine did not answer
    │   ├── RuntimeOperationError   the engine answered with an error for one operation
    │   ├── HealthGateTimeout       a component did not become healthy in time
    │   ├── PreflightFailed         a precondition is not met (carries reason + fix message)
    │   ├── Superseded              a newer generation, restart or delete arrived mid-way
    │   ├── ConfigApplyFailed       a live configuration change (reload, POST /config) failed
    │   └── GracefulRestartFailed   a graceful restart's replacement did not pass its gate
    └── PermanentError              retrying cannot help (kopf.PermanentError)
        ├── InvalidSpec             the spec is semantically invalid beyond what CEL checks
        └── ContainerConflict       a container with our name belongs to something else

Messages never contain secret values: they are shown in status, Events and logs. Every
message is scrubbed of the Secret values the operator has read (kongmasker/redaction.py), so
an echo of one in a foreign error text (e.g. Docker's `REDIS_PASSWORD=...`) is masked.
"""

from __future__ import annotations

from kongmasker.redaction import scrub


class KongMaskerError(Exception):
    """Base of every error the operator raises on purpose."""

    reason: str = "Error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        message = scrub(message)
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class TransientError(KongMaskerError):
    """Something that may succeed later; `delay` is the suggested retry delay in seconds."""

    reason = "TransientError"
    delay: float = 10.0

    def __init__(
        self, message: str, *, reason: str | None = None, delay: float | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        if delay is not None:
            self.delay = delay


class RuntimeUnavailable(TransientError):
    """The container engine cannot be reached."""

    reason = "DockerUnreachable"


class RuntimeOperationError(TransientError):
    """The container engine refused or failed one operation."""

    reason = "DockerOperationFailed"


class NotFound(RuntimeOperationError):
    """A container, image, network or volume does not exist."""

    reason = "NotFound"


class HealthGateTimeout(TransientError):
    """A component did not pass its health gate before the deadline."""

    reason = "HealthGateTimeout"

    def __init__(self, component: str, message: str, *, delay: float | None = None) -> None:
        super().__init__(f"{component}: {message}", delay=delay)
        self.component = component


class PreflightFailed(TransientError):
    """A preflight check failed; `reason` is a vocabulary reason, the message names the fix."""

    reason = "PreflightFailed"
    delay = 30.0


class Superseded(TransientError):
    """The object changed while a reconcile waited; the newer intent is handled next."""

    reason = "Superseded"
    delay = 1.0


class ConfigApplyFailed(TransientError):
    """A configuration-only update (nginx reload, Kong POST /config) did not apply."""

    reason = "ConfigApplyFailed"


class GracefulRestartFailed(TransientError):
    """A graceful restart stopped at one component: its replacement was removed and the old
    container keeps serving (the restart is not retried until a new annotation value)."""

    reason = "GracefulRestartFailed"

    def __init__(self, component: str, message: str) -> None:
        super().__init__(f"{component}: {message}")
        self.component = component


class PermanentError(KongMaskerError):
    """Retrying will not help until the user changes something."""

    reason = "PermanentError"


class InvalidSpec(PermanentError):
    """The spec cannot be turned into a stack."""

    reason = "InvalidSpec"


class ContainerConflict(PermanentError):
    """A container carrying our name is not ours."""

    reason = "ContainerConflict"
