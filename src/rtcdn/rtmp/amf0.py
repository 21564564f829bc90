"""AMF0 (Action Message Format 0): the value encoding of RTMP commands and data messages.

Python mapping, both directions:

==================  =============================================================
AMF0                Python
==================  =============================================================
number              ``float`` (ints and bools are encoded as numbers / booleans)
boolean             ``bool``
string, long string ``str`` (UTF-8; invalid bytes become U+FFFD, a long string is
                    written when the UTF-8 form is longer than 65535 bytes)
object              ``dict[str, object]``
ECMA array          :class:`EcmaArray` (a ``dict`` subclass, so ``onMetaData`` keeps its type)
strict array        ``list`` (a ``tuple`` is encoded as a strict array too)
date                ``datetime`` (UTC, aware; the time-zone field is written 0 and ignored)
null                ``None``
undefined           decoded as ``None``; encode :data:`UNDEFINED` to write one
unsupported (0x0D)  decoded as ``None``
XML document        decoded as ``str``
==================  =============================================================

Refused with :class:`AmfError` (a ``ValueError``): references (0x07), typed objects (0x10),
AMF3 values (0x11), movie clips and record sets, unknown markers, truncated data, and inputs
over the limits (:data:`MAX_DEPTH` nesting levels, :data:`MAX_ELEMENTS` values per call).
Decoding is a pure function of the bytes: no state, nothing to close.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

MAX_DEPTH = 32
"Nesting levels of objects/arrays a decode accepts."
MAX_ELEMENTS = 10_000
"Values (including nested ones and object keys' values) a single decode call accepts."

NUMBER, BOOLEAN, STRING, OBJECT, MOVIECLIP, NULL, UNDEFINED_MARKER, REFERENCE = range(8)
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING, UNSUPPORTED, RECORDSET, XML = range(8, 16)
TYPED_OBJECT, AVMPLUS = 0x10, 0x11

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAMES = {
    MOVIECLIP: "movie clip",
    REFERENCE: "reference",
    RECORDSET: "record set",
    TYPED_OBJECT: "typed object",
    AVMPLUS: "AMF3 (avmplus) value",
}


class AmfError(ValueError):
    """The bytes are not valid AMF0 (or go over a limit); the message says where and why."""


class EcmaArray(dict[str, object]):
    """An AMF0 ECMA array (associative array): a ``dict`` that is encoded as 0x08, not as an object."""


class _Undefined:
    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()
"Encodes as AMF0 undefined (0x06); decoding yields ``None`` instead."


# --------------------------------------------------------------------------------------------- decode


class _Decoder:
    def __init__(self, data: bytes | bytearray | memoryview, max_depth: int, max_elements: int) -> None:
        self.data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self.pos = 0
        self.max_depth = max_depth
        self.budget = max_elements

    def need(self, n: int, what: str) -> int:
        start = self.pos
        if start + n > len(self.data):
            raise AmfError(
                f"AMF0 data truncated: {what} needs {n} bytes at offset {start}, "
                f"{len(self.data) - start} left"
            )
        self.pos = start + n
        return start

    def u8(self, what: str) -> int:
        return int(self.data[self.need(1, what)])

    def u16(self, what: str) -> int:
        return int(struct.unpack_from("!H", self.data, self.need(2, what))[0])

    def u32(self, what: str) -> int:
        return int(struct.unpack_from("!I", self.data, self.need(4, what))[0])

    def f64(self, what: str) -> float:
        return float(struct.unpack_from("!d", self.data, self.need(8, what))[0])

    def text(self, n: int, what: str) -> str:
        start = self.need(n, what)
        return bytes(self.data[start : start + n]).decode("utf-8", errors="replace")

    def value(self, depth: int) -> object:
        self.budget -= 1
        if self.budget < 0:
            raise AmfError("AMF0 data has too many values (limit reached)")
        at = self.pos
        marker = self.u8("a type marker")
        if marker == NUMBER:
            return self.f64("a number")
        if marker == BOOLEAN:
            return self.u8("a boolean") != 0
        if marker == STRING:
            return self.text(self.u16("a string length"), "a string")
        if marker == LONG_STRING or marker == XML:
            return self.text(self.u32("a long string length"), "a long string")
        if marker in (NULL, UNDEFINED_MARKER, UNSUPPORTED):
            return None
        if marker == OBJECT:
            out: dict[str, object] = {}
            self.properties(out, depth)
            return out
        if marker == ECMA_ARRAY:
            self.u32("an ECMA array count")  # a hint only: the end marker ends the array
            ecma = EcmaArray()
            self.properties(ecma, depth)
            return ecma
        if marker == STRICT_ARRAY:
            count = self.u32("a strict array count")
            if count > len(self.data) - self.pos or count > self.budget:
                raise AmfError(
                    f"AMF0 strict array at offset {at} declares {count} elements: more than "
                    "the data or the element limit allows"
                )
            self.enter(depth, at)
            return [self.value(depth + 1) for _ in range(count)]
        if marker == DATE:
            ms = self.f64("a date")
            self.need(2, "a date time zone")
            if not math.isfinite(ms) or abs(ms) > 8.64e15:
                raise AmfError(f"AMF0 date at offset {at} is out of range: {ms!r}")
            try:
                return _EPOCH + timedelta(milliseconds=ms)
            except OverflowError:  # inside AMF's range but not datetime's (years 1..9999)
                raise AmfError(f"AMF0 date at offset {at} is outside years 1-9999: {ms!r}") from None
        if marker == OBJECT_END:
            raise AmfError(f"AMF0 object-end marker outside an object at offset {at}")
        name = _NAMES.get(marker)
        if name is not None:
            raise AmfError(f"AMF0 {name} (marker 0x{marker:02x}) at offset {at} is not supported")
        raise AmfError(f"unknown AMF0 type marker 0x{marker:02x} at offset {at}")

    def enter(self, depth: int, at: int) -> None:
        if depth >= self.max_depth:
            raise AmfError(f"AMF0 data nests deeper than {self.max_depth} levels (offset {at})")

    def properties(self, out: dict[str, object], depth: int) -> None:
        self.enter(depth, self.pos)
        while True:
            key = self.text(self.u16("a property name length"), "a property name")
            if not key and self.pos < len(self.data) and self.data[self.pos] == OBJECT_END:
                self.pos += 1
                return
            out[key] = self.value(depth + 1)


def decode(
    data: bytes | bytearray | memoryview, *, max_depth: int = MAX_DEPTH, max_elements: int = MAX_ELEMENTS
) -> list[object]:
    """Every AMF0 value in ``data``, in order (an RTMP command is ``[name, transaction id, ...]``)."""
    decoder = _Decoder(data, max_depth, max_elements)
    values = []
    while decoder.pos < len(decoder.data):
        values.append(decoder.value(0))
    return values


def decode_one(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    max_depth: int = MAX_DEPTH,
    max_elements: int = MAX_ELEMENTS,
) -> tuple[object, int]:
    """The value at ``offset`` and the offset just after it."""
    decoder = _Decoder(data, max_depth, max_elements)
    decoder.pos = offset
    value = decoder.value(0)
    return value, decoder.pos


# --------------------------------------------------------------------------------------------- encode


def _string_body(s: str) -> bytes:
    raw = s.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError(f"AMF0 property name is {len(raw)} bytes long (max 65535)")
    return struct.pack("!H", len(raw)) + raw


def _encode(value: object, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"AMF0 value nests deeper than {MAX_DEPTH} levels (a cycle?)")
    if value is None:
        out.append(b"\x05")
    elif value is UNDEFINED:
        out.append(b"\x06")
    elif isinstance(value, bool):
        out.append(b"\x01\x01" if value else b"\x01\x00")
    elif isinstance(value, int | float):
        out.append(struct.pack("!Bd", NUMBER, float(value)))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(struct.pack("!BH", STRING, len(raw)))
        else:
            out.append(struct.pack("!BI", LONG_STRING, len(raw)))
        out.append(raw)
    elif isinstance(value, datetime):
        when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        ms = (when - _EPOCH) / timedelta(milliseconds=1)
        out.append(struct.pack("!Bdh", DATE, ms, 0))
    elif isinstance(value, Mapping):
        if isinstance(value, EcmaArray):
            out.append(struct.pack("!BI", ECMA_ARRAY, len(value)))
        else:
            out.append(b"\x03")
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"AMF0 object keys must be str, not {type(key).__name__}")
            out.append(_string_body(key))
            _encode(item, out, depth + 1)
        out.append(b"\x00\x00\x09")
    elif isinstance(value, list | tuple):
        out.append(struct.pack("!BI", STRICT_ARRAY, len(value)))
        for item in value:
            _encode(item, out, depth + 1)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF0")


def encode(*values: object) -> bytes:
    """The AMF0 encoding of ``values`` one after another (``TypeError`` for an unsupported type)."""
    out: list[bytes] = []
    for value in values:
        _encode(value, out, 0)
    return b"".join(out)
