"""Read a GGUF file's metadata and tensor infos without touching the tensor data.

gguf.GGUFReader decodes every array (the vocabulary, the merges) into Python objects. Sizing a
cache needs a few scalars, so this reader walks the same layout with the gguf package's type
tables and skips large string arrays unless a caller names them.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from sddtui.errors import SddtuiError

GGUF_MAGIC = b"GGUF"
# Numeric arrays up to this length become lists; longer ones keep only their length.
SMALL_ARRAY_LIMIT = 4096

_SCALAR_FORMATS = {
    GGUFValueType.UINT8: "B",
    GGUFValueType.INT8: "b",
    GGUFValueType.UINT16: "H",
    GGUFValueType.INT16: "h",
    GGUFValueType.UINT32: "I",
    GGUFValueType.INT32: "i",
    GGUFValueType.FLOAT32: "f",
    GGUFValueType.BOOL: "?",
    GGUFValueType.UINT64: "Q",
    GGUFValueType.INT64: "q",
    GGUFValueType.FLOAT64: "d",
}


@dataclass(frozen=True, slots=True)
class GGUFHeader:
    """The metadata map and the summed tensor sizes of one GGUF file."""

    version: int
    fields: dict[str, object]
    """Key to value; a skipped array is stored as `{key}.count` instead."""
    tensor_count: int
    tensor_bytes: int


class _Cursor:
    """A read position in the mapped file, with the byte order of the file."""

    def __init__(self, buffer, order: str) -> None:
        self.buffer = buffer
        self.offset = 0
        self.order = order

    def unpack(self, code: str):
        """Read one value of struct `code` and advance."""
        value = struct.unpack_from(self.order + code, self.buffer, self.offset)[0]
        self.offset += struct.calcsize(code)
        return value

    def string(self) -> str:
        """Read a length-prefixed UTF-8 string."""
        length = self.unpack("Q")
        start = self.offset
        self.offset += length
        return bytes(self.buffer[start : self.offset]).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        """Skip a length-prefixed string."""
        self.offset += 8 + struct.unpack_from(self.order + "Q", self.buffer, self.offset)[0]


def read_gguf_header(path: Path, decode_arrays: Collection[str] = ()) -> GGUFHeader:
    """Read the metadata and tensor infos of the GGUF at `path`; decode string arrays only for `decode_arrays`."""
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            return _parse(buffer, set(decode_arrays))
    except (OSError, ValueError) as error:
        raise SddtuiError("gguf_unreadable", path=str(path), reason=str(error)) from error
    except (struct.error, IndexError) as error:
        raise SddtuiError("gguf_truncated", path=str(path), size=path.stat().st_size) from error
    except KeyError as error:
        raise SddtuiError("gguf_unreadable", path=str(path), reason=f"unknown value or tensor type {error}") from error


def _parse(buffer, decode_arrays: set[str]) -> GGUFHeader:
    """Parse the header from a mapped buffer."""
    if bytes(buffer[:4]) != GGUF_MAGIC:
        raise ValueError("the file does not start with the GGUF magic bytes")
    order = "<"
    version = struct.unpack_from("<I", buffer, 4)[0]
    if version & 0xFFFF == 0:
        order = ">"
        version = struct.unpack_from(">I", buffer, 4)[0]
    if version < 2:
        raise ValueError(f"GGUF version {version} is not supported (2 or later is)")

    cursor = _Cursor(buffer, order)
    cursor.offset = 8
    tensor_count = cursor.unpack("Q")
    kv_count = cursor.unpack("Q")

    fields: dict[str, object] = {}
    for _ in range(kv_count):
        key = cursor.string()
        value_type = GGUFValueType(cursor.unpack("I"))
        if value_type == GGUFValueType.ARRAY:
            _read_array(cursor, key, fields, key in decode_arrays)
        else:
            fields[key] = _read_scalar(cursor, value_type)

    tensor_bytes = 0
    for _ in range(tensor_count):
        cursor.skip_string()
        n_dims = cursor.unpack("I")
        elements = 1
        for _ in range(n_dims):
            elements *= cursor.unpack("Q")
        tensor_type = GGMLQuantizationType(cursor.unpack("I"))
        cursor.offset += 8
        block_size, type_size = GGML_QUANT_SIZES[tensor_type]
        tensor_bytes += elements // block_size * type_size
    return GGUFHeader(version=version, fields=fields, tensor_count=tensor_count, tensor_bytes=tensor_bytes)


def _read_scalar(cursor: _Cursor, value_type: GGUFValueType):
    """Read one scalar or string value."""
    if value_type == GGUFValueType.STRING:
        return cursor.string()
    return cursor.unpack(_SCALAR_FORMATS[value_type])


def _read_array(cursor: _Cursor, key: str, fields: dict[str, object], decode: bool) -> None:
    """Read an array value into `fields`, or skip it and store its length as `{key}.count`."""
    item_type = GGUFValueType(cursor.unpack("I"))
    count = cursor.unpack("Q")
    if item_type == GGUFValueType.STRING:
        if decode:
            fields[key] = [cursor.string() for _ in range(count)]
        else:
            for _ in range(count):
                cursor.skip_string()
            fields[f"{key}.count"] = count
        return
    if item_type == GGUFValueType.ARRAY:
        raise ValueError(f"nested arrays under {key} are not supported")

    code = _SCALAR_FORMATS[item_type]
    width = struct.calcsize(code)
    if count <= SMALL_ARRAY_LIMIT or decode:
        fields[key] = list(struct.unpack_from(f"{cursor.order}{count}{code}", cursor.buffer, cursor.offset))
    else:
        fields[f"{key}.count"] = count
    cursor.offset += width * count
