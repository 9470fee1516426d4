"""The directory store and the SigV4 signer (the S3 store itself is integration-tested)."""

from __future__ import annotations

import datetime as dt

import pytest

from kongmasker.adapters.storage import DirectoryStore, StorageError, sign_v4
from kongmasker.errors import NotFound

pytestmark = pytest.mark.unit


def test_directory_store_round_trip(tmp_path):
    store = DirectoryStore(tmp_path)
    store.put("ns/demo/b1/manifest.json", b"{}")
    store.put("ns/demo/b1/redis/dump.rdb", b"REDIS")
    store.put("ns/demo/b2/manifest.json", b"{}")
    assert store.get("ns/demo/b1/redis/dump.rdb") == b"REDIS"
    assert store.list("ns/demo/b1") == ["ns/demo/b1/manifest.json", "ns/demo/b1/redis/dump.rdb"]
    store.delete("ns/demo/b1/redis/dump.rdb")
    store.delete("ns/demo/b1/manifest.json")
    assert not (tmp_path / "ns/demo/b1").exists()  # emptied directories go too
    assert (tmp_path / "ns/demo/b2").exists()
    with pytest.raises(NotFound):
        store.get("ns/demo/b1/manifest.json")
    assert store.url("ns/x").startswith("file:///")


@pytest.mark.parametrize("key", ["../etc/passwd", "a//b", "", "a/./b"])
def test_directory_store_rejects_escaping_keys(tmp_path, key):
    with pytest.raises(StorageError):
        DirectoryStore(tmp_path).put(key, b"x")


def test_sigv4_matches_the_aws_documentation_example():
    """AWS's published "GET Bucket (List Objects)" example (SigV4 for S3, header auth)."""
    headers = sign_v4(
        "GET",
        "https://examplebucket.s3.amazonaws.com/",
        {"max-keys": "2", "prefix": "J"},
        b"",
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        now=dt.datetime(2013, 5, 24, tzinfo=dt.UTC),
    )
    assert headers["Authorization"].endswith(
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    )
