"""A backup directory on the Docker host of a stack, reached through the Docker API only.

The operator may run anywhere (a pod, another machine) while the stack runs on a Docker
engine it reaches by URL; `DirectoryStore` would write into the operator's own filesystem.
`DockerHostDirectoryStore` keeps the files on the engine's host instead: a short-lived
helper container (an image already present there, in practice the stack's Redis image;
`sleep` as its entrypoint, no network, no restart) bind-mounts the *parent* of the root
directory, and every operation is one Docker API call or two:

    put     copy into <root>/.tmp-kongmasker/ (put_archive), then one exec: chmod 600,
            sync, mkdir -p the key's directory, rename into place (atomic for readers)
    get     get_archive of the file
    list    exec find, NUL-separated
    delete  exec rm, then rmdir of the directories it left empty

Mounting the parent lets the root be created with mode 0700 when it is missing (umask 077:
directories 0700, files 0600; backups hold masking mappings) while an existing root keeps
its mode. The engine creates a missing parent itself (as `mkdir -p` would).

The helper is created on first use and removed by `close()` (the store is a context
manager); one helper serves every operation of one store use. It carries the labels its
creator gives (core labels it like the other throwaway containers) and exits on its own
after `HELPER_LIFETIME` seconds should its creator die without removing it. A helper that
has gone (engine restart, lifetime over) is replaced once, transparently.
"""

from __future__ import annotations

import logging
import posixpath
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TypeVar
from urllib.parse import urlparse

from kongmasker.adapters.runtime import ContainerSpec, Runtime
from kongmasker.adapters.storage import StorageError, _check_key
from kongmasker.errors import KongMaskerError, NotFound, RuntimeOperationError

log = logging.getLogger(__name__)
T = TypeVar("T")

HELPER_MOUNT = "/kongmasker-host"
"""Where the helper sees the parent of the root directory."""
HELPER_LIFETIME = 6 * 3600
"""Seconds after which a helper exits by itself (its creator normally removes it long before)."""
STAGING = ".tmp-kongmasker"
"""Directory under the root where files are written before being renamed into place."""

_PREPARE = """
set -e
umask 077
mkdir -p -- "$1/$2"
chmod 700 -- "$1/$2"
"""

_PUT = """
set -e
umask 077
trap 'rm -f -- "$1"' EXIT
chmod 600 -- "$1"
sync -- "$1" 2>/dev/null || sync
mkdir -p -- "${2%/*}"
mv -f -- "$1" "$2"
"""

_LIST = """
cd -- "$1" 2>/dev/null || exit 0
[ -d "$2" ] || exit 0
find "$2" -name '.tmp-*' -prune -o -type f -print0 2>/dev/null
"""

_DELETE = """
cd -- "$1" 2>/dev/null || exit 0
rm -f -- "$2" || exit 1
d=$(dirname -- "$2")
while [ "$d" != . ] && rmdir -- "$d" 2>/dev/null; do d=$(dirname -- "$d"); done
exit 0
"""


def engine_host(url: str) -> str:
    """How a status URL names the engine's host: host[:port] of a TCP/SSH engine URL,
    `localhost` for a unix socket (or an empty URL: the operator's own engine)."""
    parsed = urlparse(url)
    if parsed.scheme in ("tcp", "http", "https", "ssh") and parsed.hostname:
        return f"{parsed.hostname}:{parsed.port}" if parsed.port else parsed.hostname
    return "localhost"


class DockerHostDirectoryStore:
    """Files under `root`, a directory of the Docker host `runtime` talks to.

    `image` must exist on that host (it runs the helper: needs sh, sleep, find, mv, rm).
    `engine` names the host in `url()` (see `engine_host`).
    """

    def __init__(
        self,
        runtime: Runtime,
        root: str,
        image: str,
        *,
        labels: Mapping[str, str],
        engine: str = "localhost",
    ) -> None:
        path = posixpath.normpath(root) if root else ""
        if not path.startswith("/") or path == "/":
            raise StorageError(f"backup directory must be an absolute path below /: {root!r}")
        self.runtime = runtime
        self.root = path
        self.image = image
        self.engine = engine
        self.labels = dict(labels)
        self._parent = posixpath.dirname(path)
        self._dir = f"{HELPER_MOUNT}/{posixpath.basename(path)}"
        self._id = ""
        self._prepared = False

    # -- the BackupStore protocol -----------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        rel = _key(key)
        target = f"{self._dir}/{rel}"

        def op(cid: str) -> None:
            if not self._prepared:
                self._sh(cid, _PREPARE, f"creating {self.root}", self._dir, STAGING)
                self._prepared = True
            tmp = f"{self._dir}/{STAGING}/.tmp-{uuid.uuid4().hex}"
            try:
                self.runtime.put_file(cid, tmp, data)
            except KongMaskerError:
                self._sh(cid, 'rm -f -- "$1"', "cleaning up", tmp, check=False)
                raise
            self._sh(cid, _PUT, f"writing {self._host_path(rel)}", tmp, target)

        self._run(op, f"writing {self._host_path(rel)}")

    def get(self, key: str) -> bytes:
        rel = _key(key)

        def op(cid: str) -> bytes | None:
            data = self.runtime.read_file(cid, f"{self._dir}/{rel}")
            if data is None and not self._alive(cid):
                # The engine says "not found" for a missing container as for a missing file.
                raise RuntimeOperationError("backup store helper is gone")
            return data

        data = self._run(op, f"reading {self._host_path(rel)}")
        if data is None:
            raise NotFound(f"{self.url(key)} does not exist")
        return data

    def list(self, prefix: str) -> list[str]:
        rel = _key(prefix)
        out = self._run(
            lambda cid: self._sh(cid, _LIST, f"listing {self._host_path(rel)}", self._dir, rel),
            f"listing {self._host_path(rel)}",
        )
        return sorted(p for p in out.split("\0") if p)

    def delete(self, key: str) -> None:
        rel = _key(key)
        what = f"deleting {self._host_path(rel)}"
        self._run(lambda cid: self._sh(cid, _DELETE, what, self._dir, rel), what)

    def url(self, key: str) -> str:
        return f"docker-host://{self.engine}{self._host_path(_key(key))}"

    def close(self) -> None:
        """Remove the helper container (if one was made); never raises."""
        if not self._id:
            return
        cid, self._id = self._id, ""
        self._prepared = False
        try:
            self.runtime.remove_container(cid, force=True)
        except KongMaskerError as exc:
            log.warning("could not remove backup store helper %s: %s", cid[:12], exc.message)

    def __enter__(self) -> DockerHostDirectoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def helper_id(self) -> str:
        """The helper container's id ("" when none is running for this store)."""
        return self._id

    # -- helper container --------------------------------------------------------------------

    def _host_path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def _helper(self) -> str:
        if self._id:
            return self._id
        spec = ContainerSpec(
            name=f"km-scratch-store-{uuid.uuid4().hex[:10]}",
            image=self.image,
            labels=self.labels,
            entrypoint=("sleep",),
            command=(str(HELPER_LIFETIME),),
            network_mode="none",
            binds={self._parent: HELPER_MOUNT},
            restart=False,
            stop_timeout=1,
        )
        self._id = self.runtime.create_container(spec).id
        try:
            self.runtime.start_container(self._id)
        except BaseException:
            self.close()
            raise
        return self._id

    def _run(self, op: Callable[[str], T], what: str) -> T:
        """`op(helper id)`, retried once on a new helper if the old one is gone; engine
        errors become StorageError (NotFound from `op` itself passes through)."""
        try:
            cid = self._helper()
            try:
                return op(cid)
            except StorageError:
                raise
            except RuntimeOperationError:
                if self._alive(cid):
                    raise
                log.info("backup store helper %s is gone; starting another", cid[:12])
                self.close()
                return op(self._helper())
        except StorageError:
            raise
        except KongMaskerError as exc:
            raise StorageError(f"{what} on the Docker host: {exc.message}") from exc

    def _alive(self, cid: str) -> bool:
        try:
            info = self.runtime.get_container(cid)
        except KongMaskerError:
            return False
        return info is not None and info.running

    def _sh(self, cid: str, script: str, what: str, *args: str, check: bool = True) -> str:
        result = self.runtime.exec(cid, ["sh", "-c", script, "sh", *args])
        if check and result.exit_code != 0:
            detail = result.output.strip()[-300:] or f"exit {result.exit_code}"
            raise StorageError(f"{what} on the Docker host: {detail}")
        return result.output


def _key(key: str) -> str:
    rel = _check_key(key)
    if any(ord(c) < 32 for c in rel) or any(p.startswith(".tmp-") for p in rel.split("/")):
        raise StorageError(f"invalid backup key {key!r}")
    return rel
