"""Talking to Redis from inside its container, and throwaway Redis containers.

Backups run redis-cli through `Runtime.exec` rather than over the network: it works for a
remote Docker host whose Redis binds 127.0.0.1, and the password never leaves the container
(redis-cli reads it from the container's own REDIS_PASSWORD, as the image's HEALTHCHECK does).

`ScratchRedis` is a throwaway container of the stack's Redis image with no TCP port (a unix
socket only, so it can never collide with or be reached by anything else); it loads an RDB
to count keys (validation) or works on the stack's volume during a restore.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

from kongmasker.adapters.runtime import ContainerSpec, Runtime
from kongmasker.api.vocabulary import LABEL_MANAGED_BY, LABEL_PART_OF, MANAGED_BY, PART_OF
from kongmasker.core.backup.manifest import LONGEST, PERSISTENT, TTL_CLASSES, KeyCounts, PrefixStats
from kongmasker.errors import RuntimeOperationError

log = logging.getLogger(__name__)

SCRATCH_SOCKET = "/tmp/kongmasker-scratch.sock"
SCRATCH_LOG = "/tmp/redis.log"
LABEL_SCRATCH = "kongmasker.io/scratch"

_ERROR_PREFIXES = (
    "ERR",
    "WRONGTYPE",
    "NOAUTH",
    "WRONGPASS",
    "LOADING",
    "BUSY",
    "MISCONF",
    "NOSCRIPT",
    "READONLY",
    "Could not connect",
    "NOPERM",
)

# One pass over the keyspace inside Redis (atomic, so SCAN sees every key exactly once):
# keys per prefix (text up to the second ":") and per TTL class. Bounds come from manifest.py.
_COUNT_SCRIPT = """
local bounds = {{{bounds}}}
local names = {{{names}}}
local out = {{}}
local cursor = "0"
repeat
  local page = redis.call("SCAN", cursor, "COUNT", 1000)
  cursor = page[1]
  for _, k in ipairs(page[2]) do
    local p = ""
    local a = string.find(k, ":", 1, true)
    if a then
      local b = string.find(k, ":", a + 1, true)
      p = string.sub(k, 1, b or a)
    end
    local e = out[p]
    if not e then e = {{keys = 0, ttl = {{}}}}; out[p] = e end
    e.keys = e.keys + 1
    local t = redis.call("PTTL", k)
    local c = "{persistent}"
    if t >= 0 then
      c = "{longest}"
      for i, bd in ipairs(bounds) do
        if t < bd * 1000 then c = names[i]; break end
      end
    end
    e.ttl[c] = (e.ttl[c] or 0) + 1
  end
until cursor == "0"
return cjson.encode(out)
""".format(
    bounds=", ".join(str(b) for _, b in TTL_CLASSES),
    names=", ".join(f'"{n}"' for n, _ in TTL_CLASSES),
    persistent=PERSISTENT,
    longest=LONGEST,
)


class RedisCommandFailed(RuntimeOperationError):
    """redis-cli could not run a command, or Redis answered with an error."""

    reason = "RedisCommandFailed"


@dataclass
class ContainerRedis:
    """redis-cli inside `container`: over a unix `socket`, or (empty) over TCP 127.0.0.1 on
    the container's REDIS_PORT with its REDIS_PASSWORD."""

    runtime: Runtime
    container: str
    socket: str = ""
    db: int = 0

    def call(self, *args: str) -> str:
        """Run one command; its raw answer (stripped). Raises RedisCommandFailed."""
        if self.socket:
            command = ["redis-cli", "-s", self.socket, "-n", str(self.db), "--raw", *args]
        else:
            script = (
                '[ -n "${REDIS_PASSWORD:-}" ] && export REDISCLI_AUTH="$REDIS_PASSWORD"; '
                f'exec redis-cli -h 127.0.0.1 -p "${{REDIS_PORT:-6379}}" -n {self.db} --raw "$@"'
            )
            command = ["sh", "-c", script, "redis-cli", *args]
        result = self.runtime.exec(self.container, command)
        out = result.output.strip()
        if result.exit_code != 0 or out.startswith(_ERROR_PREFIXES):
            raise RedisCommandFailed(f"redis {args[0]}: {out[:300] or f'exit {result.exit_code}'}")
        return out

    def ping(self) -> bool:
        try:
            return self.call("PING") == "PONG"
        except RedisCommandFailed:
            return False

    def info(self, section: str) -> dict[str, str]:
        lines = self.call("INFO", section).splitlines()
        return dict(
            line.split(":", 1) for line in lines if ":" in line and not line.startswith("#")
        )

    def server_time(self) -> float:
        seconds, micros = self.call("TIME").split()
        return int(seconds) + int(micros) / 1e6

    def count_keys(self) -> KeyCounts:
        """Keys per prefix and TTL class, counted in one atomic script run."""
        raw = json.loads(self.call("EVAL", _COUNT_SCRIPT, "0"))
        if not isinstance(raw, dict):  # cjson encodes an empty table as {} or []
            return {}
        return {
            p: PrefixStats(int(e["keys"]), {k: int(v) for k, v in (e.get("ttl") or {}).items()})
            for p, e in raw.items()
        }


def labels(purpose: str) -> dict[str, str]:
    return {LABEL_PART_OF: PART_OF, LABEL_MANAGED_BY: MANAGED_BY, LABEL_SCRATCH: purpose}


@dataclass
class ScratchRedis:
    """A throwaway Redis container (context manager): created, started, removed on exit.

    `volume` mounts an existing volume at /data (a restore works on the stack's own);
    without it a fresh named volume is created and removed with the container (the image
    declares VOLUME /data, which would otherwise leave an anonymous volume behind).
    `files` are copied in before Redis starts (e.g. /data/dump.rdb to load).
    """

    runtime: Runtime
    image: str
    purpose: str
    volume: str = ""
    files: Mapping[str, bytes] = field(default_factory=dict)
    data_dir: str = "/data"
    appendonly: bool = False
    ready_timeout: float = 300.0
    name: str = ""
    _own_volume: str = ""
    _id: str = ""

    def __post_init__(self) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.name = self.name or f"km-scratch-{self.purpose}-{suffix}"
        if not self.volume:
            self._own_volume = self.volume = f"km-scratch-{suffix}"

    @property
    def container_id(self) -> str:
        return self._id

    @property
    def redis(self) -> ContainerRedis:
        return ContainerRedis(self.runtime, self._id, socket=SCRATCH_SOCKET)

    def __enter__(self) -> ScratchRedis:
        tags = labels(self.purpose)
        if self._own_volume:
            self.runtime.ensure_volume(self._own_volume, tags)
        args = (
            "--port", "0",
            "--unixsocket", SCRATCH_SOCKET,
            "--unixsocketperm", "700",
            "--dir", self.data_dir,
            "--dbfilename", "dump.rdb",
            "--appendonly", "yes" if self.appendonly else "no",
            "--save", "",
            "--logfile", SCRATCH_LOG,
        )  # fmt: skip
        spec = ContainerSpec(
            name=self.name,
            image=self.image,
            labels=tags,
            command=args,
            volumes={self.volume: "/data"},
            files=dict(self.files),
            stop_timeout=60,
        )
        try:
            self._id = self.runtime.create_container(spec).id
            self.runtime.start_container(self._id)
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._id:
            self.runtime.remove_container(self._id, force=True)
            self._id = ""
        if self._own_volume:
            self.runtime.remove_volume(self._own_volume)
            self._own_volume = ""

    def wait_ready(self) -> None:
        """Until PING answers PONG (the dataset is loaded); raise with Redis's own log if
        the server exits (e.g. an RDB that fails its checksum) or the deadline passes."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            info = self.runtime.get_container(self._id)
            if info is None or not info.running:
                raise RedisCommandFailed(f"throwaway Redis exited: {self.log_tail()}")
            if self.redis.ping():
                return
            if time.monotonic() > deadline:
                raise RedisCommandFailed(
                    f"throwaway Redis not ready after {self.ready_timeout:.0f}s: {self.log_tail()}"
                )
            time.sleep(0.1)

    def log_tail(self, lines: int = 3) -> str:
        raw = self.runtime.read_file(self._id, SCRATCH_LOG) or b""
        text = raw.decode(errors="replace").strip().splitlines()
        # Redis log lines: "1:M 26 Nov 2026 15:04:25.661 # message"; keep the messages.
        messages = [line.split(" # ", 1)[-1].split(" * ", 1)[-1] for line in text[-lines:]]
        return " | ".join(messages) or "no log"

    def shell(self, script: str) -> str:
        """Run a shell script as root in the container (file moves on the volume)."""
        result = self.runtime.exec(self._id, ["sh", "-euc", script])
        if result.exit_code != 0:
            raise RuntimeOperationError(f"shell step failed: {result.output.strip()[:300]}")
        return result.output

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RedisCommandFailed(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.1)
