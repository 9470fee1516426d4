"""A real MinIO server on 127.0.0.1 for the S3 backup store's tests (integration and e2e).

MinIO is built from source through the Go module proxy by `hack/build-binaries.sh minio`
(cached after the first build); each user starts its own with a private data directory and
root credentials. MinIO verifies SigV4 signatures, so bad credentials fail for real.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.support import REPO_ROOT, free_port, wait_until

from kongmasker.adapters.storage import S3Store, sign_v4

ACCESS, SECRET = "kongmasker-test", "kongmasker-test-secret-key"
CACHE = Path(os.environ.get("KONGMASKER_CACHE", Path.home() / ".cache" / "kongmasker"))


@dataclass
class S3Server:
    endpoint: str

    def store(self, bucket: str, *, secret: str = SECRET, prefix: str = "") -> S3Store:
        return S3Store(bucket, ACCESS, secret, endpoint=self.endpoint, prefix=prefix)

    def make_bucket(self, bucket: str) -> None:
        url = f"{self.endpoint}/{bucket}"
        headers = sign_v4("PUT", url, {}, b"", access_key=ACCESS, secret_key=SECRET,
                          region="us-east-1")  # fmt: skip
        assert httpx.put(url, headers=headers).status_code == 200


@contextmanager
def minio(data: Path) -> Iterator[S3Server]:
    """Build (if needed) and run MinIO on free 127.0.0.1 ports until the block ends."""
    subprocess.run(["bash", str(REPO_ROOT / "hack/build-binaries.sh"), "minio"], check=True)
    port, console = free_port(), free_port()
    log = (data.parent / f"{data.name}-minio.log").open("w")
    proc = subprocess.Popen(
        [str(CACHE / "bin/minio"), "server", str(data), "--address", f"127.0.0.1:{port}",
         "--console-address", f"127.0.0.1:{console}", "--quiet"],
        env={**os.environ, "MINIO_ROOT_USER": ACCESS, "MINIO_ROOT_PASSWORD": SECRET,
             "MINIO_BROWSER": "off"},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{endpoint}/minio/health/live").status_code == 200,
                   timeout=60, what="MinIO to answer")  # fmt: skip
        yield S3Server(endpoint)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
