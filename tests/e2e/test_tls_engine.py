"""A stack on a Docker engine reached over TCP with mutual TLS (spec.dockerHost.url +
tlsSecretRef), on the real API server and dockerd.

The engine is the test's own dockerd; the TLS endpoint in front of it is a small TLS
terminator started here (certificates made with openssl: a CA, a server certificate for
127.0.0.1, a client certificate) that requires a client certificate signed by that CA and
pipes the bytes to the engine's unix socket, as `dockerd --tlsverify -H tcp://...` would
serve them. It stands in for a remote engine's TLS listener because the local engine may be
one this test must not reconfigure (`make test` reuses an engine already running).

Shown: the stack comes up through TLS with the material read from the Secret; its crashed
gateway is seen and counted by the event daemon and the health watch over the same TLS link;
a Secret whose CA does not match is reported in the stack's conditions, naming the engine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.stack_env import StackEnv
from tests.support import free_port, wait_until

pytestmark = pytest.mark.e2e

OPENSSL_EXT = {
    "server": "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    "client": "extendedKeyUsage=clientAuth\n",
}


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(where: Path, name: str = "ca") -> dict[str, Path]:
    """A CA and, signed by it, a server certificate for 127.0.0.1 and a client certificate."""
    where.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", cwd=where)  # fmt: skip
    for role, ext in OPENSSL_EXT.items():
        (where / f"{role}.ext").write_text(ext)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={role}",
                 "-keyout", f"{role}-key.pem", "-out", f"{role}.csr", cwd=where)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{role}.csr", "-CA", f"{name}.pem", "-CAkey",
                 f"{name}-key.pem", "-CAcreateserial", "-days", "2", "-extfile", f"{role}.ext",
                 "-out", f"{role}.pem", cwd=where)  # fmt: skip
    return {
        "ca": where / f"{name}.pem",
        "server": where / "server.pem",
        "server-key": where / "server-key.pem",
        "client": where / "client.pem",
        "client-key": where / "client-key.pem",
    }


@contextlib.contextmanager
def tls_endpoint(pki: dict[str, Path], engine_socket: str) -> Iterator[str]:
    """tcp://127.0.0.1:<port> speaking mutual TLS, piping to the engine's unix socket."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server"], pki["server-key"])
    ctx.load_verify_locations(pki["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))
    done = threading.Event()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve(raw: socket.socket) -> None:
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # no or a foreign client certificate: refused, as dockerd does
            return
        engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        engine.connect(engine_socket)
        back = threading.Thread(target=pump, args=(engine, conn), daemon=True)
        back.start()
        pump(conn, engine)
        back.join(timeout=600)
        conn.close()
        engine.close()

    def accept() -> None:
        while not done.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(raw,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        done.set()
        listener.close()
        thread.join(timeout=5)


def _tls_secret(env: StackEnv, name: str, ca: Path, cert: Path, key: Path) -> None:
    env.kubectl(
        "create", "secret", "generic", name, "-n", env.namespace,
        f"--from-file=ca.pem={ca}", f"--from-file=cert.pem={cert}", f"--from-file=key.pem={key}",
    )  # fmt: skip


def test_a_stack_on_a_tls_engine_runs_is_watched_and_a_wrong_ca_is_reported(
    stack_env: StackEnv, docker_host: str, tmp_path: Path
) -> None:
    env = stack_env
    assert docker_host.startswith("unix://"), docker_host
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other", name="other-ca")
    _tls_secret(env, "engine-tls", pki["ca"], pki["client"], pki["client-key"])
    _tls_secret(env, "wrong-ca", other["ca"], pki["client"], pki["client-key"])

    with tls_endpoint(pki, docker_host.removeprefix("unix://")) as url:
        name = "tls"
        monitoring = {"probes": {"periodSeconds": 2, "timeoutSeconds": 1}}
        spec = env.spec(
            name,
            dockerHost={"url": url, "tlsSecretRef": {"name": "engine-tls"}},
            monitoring=monitoring,
        )
        env.apply(name, spec)
        status = env.wait_ready(name)
        assert all(status["components"][c]["state"] == "Healthy" for c in status["components"])
        assert len(env.containers(name)) == 4

        # The event daemon and the watch reach the engine through TLS too.
        [kong] = env.by_component(name)["kong"]
        kong.reload()
        os.kill(int(kong.attrs["State"]["Pid"]), signal.SIGKILL)
        wait_until(
            lambda: env.events_with(name, "ContainerExited", "kong: container exited"),
            timeout=90,
            what="ContainerExited over TLS",
        )

        # A CA that did not sign the engine's certificate: said in the conditions.
        bad = "badca"
        env.apply(
            bad,
            env.spec(bad, dockerHost={"url": url, "tlsSecretRef": {"name": "wrong-ca"}}),
        )
        cond = env.wait_condition(bad, "Ready", "False", timeout=90)
        assert url.removeprefix("tcp://") in cond["message"] or "Docker" in cond["message"], cond
        assert "CERTIFICATE_VERIFY_FAILED" in cond["message"] or "certificate" in cond["message"]
        assert env.containers(bad) == []

        env.delete(bad)
        env.delete(name)  # through TLS: the graceful stop needs the engine
        assert env.containers(name) == []
