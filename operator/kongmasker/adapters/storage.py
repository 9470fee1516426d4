"""Backup stores: where backup files live. `BackupStore` is the protocol core sees.

* `DirectoryStore` - a directory of the machine the operator runs on (tests, tools). The
  operator's directory storage is `hoststore.DockerHostDirectoryStore`, which writes on the
  stack's Docker host through the Docker API wherever the operator runs.
* `S3Store` - an S3-compatible bucket, spoken to with plain SigV4-signed HTTP (httpx), so
  no SDK is needed; tested against a real local S3-compatible server.

Keys are relative, "/"-separated paths ("default/demo/nightly-1/manifest.json"). Writers
store each object whole (temp file + rename, or one PUT): a reader never sees half a file.
Errors: a missing key -> NotFound; anything else -> StorageError (transient).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlparse

import httpx

from kongmasker.errors import NotFound, TransientError


class StorageError(TransientError):
    """The backup store refused or failed an operation."""

    reason = "StorageError"


class BackupStore(Protocol):
    """A flat key -> bytes store."""

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` (replacing it), atomically for readers."""
        ...

    def get(self, key: str) -> bytes:
        """The content of `key`; raises NotFound if it does not exist."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a "directory"), sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; no error if it does not exist."""
        ...

    def url(self, key: str) -> str:
        """A URL naming `key`, for status (docker-host://..., s3://bucket/...)."""
        ...

    def close(self) -> None:
        """Release what the store holds (connections, helper containers); idempotent."""
        ...


def _check_key(key: str) -> str:
    parts = key.strip("/").split("/")
    if not key.strip("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid backup key {key!r}")
    return "/".join(parts)


class DirectoryStore:
    """Files under a root directory; created on first write."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"writing {path}: {exc.strerror or exc}") from exc

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"{path} does not exist") from exc
        except OSError as exc:
            raise StorageError(f"reading {path}: {exc.strerror or exc}") from exc

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        out = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                out.append(path.relative_to(self.root).as_posix())
        return sorted(out)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
            # Remove directories left empty, up to (not including) the root.
            parent = path.parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        except OSError as exc:
            raise StorageError(f"deleting {path}: {exc.strerror or exc}") from exc

    def url(self, key: str) -> str:
        return self._path(key).as_uri() if self.root.is_absolute() else str(self._path(key))

    def close(self) -> None:
        return None


class S3Store:
    """An S3-compatible bucket over SigV4-signed HTTP, path-style addressing.

    Path style (http://endpoint/bucket/key) works with AWS, MinIO and other compatible
    servers alike; virtual-host style would need DNS per bucket.
    """

    def __init__(
        self,
        bucket: str,
        access_key: str,
        secret_key: str,
        *,
        endpoint: str = "",
        region: str = "us-east-1",
        prefix: str = "",
        timeout: float = 60.0,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.prefix = prefix.strip("/")
        self.endpoint = (endpoint or f"https://s3.{region}.amazonaws.com").rstrip("/")
        self._access = access_key
        self._secret = secret_key
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _object(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        resp = self._request("PUT", self._object(key), body=data)
        if resp.status_code not in (200, 201):
            raise StorageError(f"S3 PUT {self.url(key)}: HTTP {resp.status_code} {_s3_error(resp)}")

    def get(self, key: str) -> bytes:
        resp = self._request("GET", self._object(key))
        if resp.status_code == 404:
            raise NotFound(f"{self.url(key)} does not exist")
        if resp.status_code != 200:
            raise StorageError(f"S3 GET {self.url(key)}: HTTP {resp.status_code} {_s3_error(resp)}")
        return resp.content

    def list(self, prefix: str) -> list[str]:
        full = self._object(prefix).rstrip("/") + "/"
        keys: list[str] = []
        token = ""
        while True:
            query = {"list-type": "2", "prefix": full}
            if token:
                query["continuation-token"] = token
            resp = self._request("GET", "", query=query)
            if resp.status_code != 200:
                raise StorageError(f"S3 LIST {full}: HTTP {resp.status_code} {_s3_error(resp)}")
            root = ET.fromstring(resp.content)
            for item in _children(root, "Contents"):
                name = _text(item, "Key")
                keys.append(name[len(self.prefix) + 1 :] if self.prefix else name)
            token = _text(root, "NextContinuationToken")
            if _text(root, "IsTruncated") == "true" and token:
                continue
            return sorted(keys)

    def delete(self, key: str) -> None:
        resp = self._request("DELETE", self._object(key))
        if resp.status_code not in (200, 204, 404):
            raise StorageError(f"S3 DELETE {self.url(key)}: HTTP {resp.status_code}")

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object(key)}"

    def _request(
        self, method: str, key: str, *, body: bytes = b"", query: dict[str, str] | None = None
    ) -> httpx.Response:
        path = f"/{self.bucket}/{quote(key, safe='/-_.~')}" if key else f"/{self.bucket}"
        url = self.endpoint + path
        headers = sign_v4(
            method,
            url,
            query or {},
            body,
            access_key=self._access,
            secret_key=self._secret,
            region=self.region,
        )
        try:
            return self._http.request(method, url, params=query, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise StorageError(f"S3 {method} {url}: {type(exc).__name__}: {exc}") from exc


def sign_v4(
    method: str,
    url: str,
    query: dict[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "s3",
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """Headers (Host, x-amz-date, x-amz-content-sha256, Authorization) of an AWS SigV4
    request; `url` is already percent-encoded, `query` is not."""
    now = now or dt.datetime.now(dt.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    parsed = urlparse(url)
    host = parsed.netloc
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )
    canonical = "\n".join(
        [
            method,
            parsed.path or "/",
            canonical_query,
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed,
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Host": host,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        ),
    }


def _children(elem: ET.Element, tag: str) -> list[ET.Element]:
    """Direct children named `tag`, whatever XML namespace the server uses."""
    return [child for child in elem if child.tag.rsplit("}", 1)[-1] == tag]


def _text(elem: ET.Element, tag: str) -> str:
    found = _children(elem, tag)
    return (found[0].text or "") if found else ""


def _s3_error(resp: httpx.Response) -> str:
    try:
        root = ET.fromstring(resp.content)
    except ET.ParseError:
        return ""
    code = next((e.text for e in root.iter() if e.tag.endswith("Code")), "")
    return code or ""
