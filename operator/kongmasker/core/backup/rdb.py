"""Reading the header of a Redis RDB file: format version, AUX fields (redis-ver, ctime) and
the key counts Redis declares per database (RESIZEDB) at the moment of the fork.

Only the prologue is parsed; the key/value section is left to Redis itself (a throwaway
Redis load verifies it, including the RDB's own CRC64).

    >>> info = parse_header(b"REDIS0010\\xfa\\tredis-ver\\x067.0.15\\xfe\\x00\\xfb\\x02\\x01\\xff")
    >>> info.version, info.redis_version, info.declared_keys
    (10, '7.0.15', 2)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

_OP_AUX, _OP_RESIZEDB, _OP_SELECTDB, _OP_EOF = 0xFA, 0xFB, 0xFE, 0xFF
_OP_MODULE_AUX, _OP_FUNCTION2, _OP_FUNCTION = 0xF7, 0xF5, 0xF6


class RdbFormatError(ValueError):
    """The bytes are not (the start of) an RDB file."""


@dataclass(frozen=True)
class RdbHeader:
    version: int
    aux: dict[str, str] = field(default_factory=dict)
    keys_by_db: dict[int, int] = field(default_factory=dict)
    """RESIZEDB's db_size per database: keys at fork time (expired-not-yet-evicted included)."""
    expires_by_db: dict[int, int] = field(default_factory=dict)

    @property
    def redis_version(self) -> str:
        return self.aux.get("redis-ver", "")

    @property
    def created(self) -> int:
        """Unix time the save began (AUX ctime), 0 if absent."""
        try:
            return int(self.aux.get("ctime", "0"))
        except ValueError:
            return 0

    @property
    def declared_keys(self) -> int:
        return sum(self.keys_by_db.values())


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise RdbFormatError("RDB ends inside its header")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def length(self) -> tuple[int, bool]:
        """(value, is_special_encoding)."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int(struct.unpack(">I", self.take(4))[0]), False
        if first == 0x81:
            return int(struct.unpack(">Q", self.take(8))[0]), False
        raise RdbFormatError(f"unknown length encoding 0x{first:02x}")

    def string(self) -> str:
        n, special = self.length()
        if not special:
            return self.take(n).decode("utf-8", errors="replace")
        if n == 0:
            return str(struct.unpack("<b", self.take(1))[0])
        if n == 1:
            return str(struct.unpack("<h", self.take(2))[0])
        if n == 2:
            return str(struct.unpack("<i", self.take(4))[0])
        if n == 3:  # LZF-compressed: long AUX values only; the content is not needed here
            clen, _ = self.length()
            self.length()
            self.take(clen)
            return "<lzf>"
        raise RdbFormatError(f"unknown string encoding {n}")


def parse_header(data: bytes) -> RdbHeader:
    """Parse the magic, AUX fields and every database's RESIZEDB counts.

    Stops at the first key; raises RdbFormatError if `data` is not an RDB prologue.
    """
    if len(data) < 9 or data[:5] != b"REDIS" or not data[5:9].isdigit():
        raise RdbFormatError("missing REDIS magic: not an RDB file")
    reader = _Reader(data)
    reader.pos = 9
    header = RdbHeader(version=int(data[5:9]))
    db = 0
    while True:
        op = reader.byte()
        if op == _OP_AUX:
            key = reader.string()
            header.aux[key] = reader.string()
        elif op == _OP_SELECTDB:
            db = reader.length()[0]
        elif op == _OP_RESIZEDB:
            header.keys_by_db[db] = reader.length()[0]
            header.expires_by_db[db] = reader.length()[0]
        elif op in (_OP_EOF, _OP_MODULE_AUX, _OP_FUNCTION, _OP_FUNCTION2):
            # EOF: an empty dataset. Module AUX / functions: variable payloads we do not
            # need; the counts seen so far (RESIZEDB comes before each db's keys) stand.
            return header
        else:
            # A value type byte: the first key of `db`. Skipping keys needs a full parser,
            # so only the first non-empty database is counted (a stack uses one db).
            return header
