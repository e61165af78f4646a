"""The central directory of a zip archive as torch's reader (miniz) reads it.

A torch file is a zip archive, and what it expands to is what its central directory says. Python's
``zipfile`` and torch's miniz read that directory differently where the format leaves room:
``zipfile`` finds the directory by the end record's position, miniz by the offset it states;
``zipfile`` reads every ZIP64 field of an entry, miniz the first. A crafted archive shows each
reader other sizes. :func:`torch_entries` reads the sizes as miniz does, and
:func:`check_same_view` refuses an archive that ``zipfile`` reads differently.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

END = struct.Struct("<4s4H2LH")  # end of central directory record
LOCATOR = struct.Struct("<4sLQL")  # ZIP64 end record locator
END64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory record
ENTRY = struct.Struct("<4s6H3L5H2L")  # a central directory entry, before its name and extras
SENTINEL = 0xFFFFFFFF
MAX_ENTRIES = 1_000_000


class ZipDirectoryError(ValueError):
    """The archive's directory cannot be read, or reads differently to torch and to Python."""


@dataclass(frozen=True)
class Entry:
    """One member: its name, compression method and sizes, as torch's reader sees them."""

    name: bytes
    method: int
    compressed: int
    uncompressed: int


def _end_records(file: BinaryIO, size: int) -> tuple[int, int]:
    """``(entries, directory offset)`` from the end record (the last one that fits in the
    final 64 KiB), or from the ZIP64 end record when a valid locator precedes it."""
    tail = min(size, 65_535 + END.size)
    file.seek(size - tail)
    data = file.read(tail)
    position = data.rfind(b"PK\x05\x06", 0, len(data) - END.size + 4)
    if position < 0:
        raise ZipDirectoryError("no end of central directory record")
    fields = END.unpack(data[position:position + END.size])
    entries, offset = fields[4], fields[6]
    start = size - tail + position - LOCATOR.size
    if start >= 0:
        file.seek(start)
        signature, _, record, _ = LOCATOR.unpack(file.read(LOCATOR.size))
        if signature == b"PK\x06\x07" and 0 <= record <= size - END64.size:
            file.seek(record)
            zip64 = END64.unpack(file.read(END64.size))
            if zip64[0] == b"PK\x06\x06":
                entries, offset = zip64[7], zip64[9]
    return entries, offset


def _zip64_sizes(extra: bytes, compressed: int, uncompressed: int) -> tuple[int, int]:
    """The sizes a ZIP64 extra field replaces (miniz reads the first such field only)."""
    position = 0
    while position + 4 <= len(extra):
        field, length = struct.unpack("<HH", extra[position:position + 4])
        data = extra[position + 4:position + 4 + length]
        if field == 1:
            values = [struct.unpack("<Q", data[i:i + 8])[0] for i in range(0, len(data) - 7, 8)]
            if uncompressed == SENTINEL:
                uncompressed = values.pop(0) if values else SENTINEL
            if compressed == SENTINEL:
                compressed = values.pop(0) if values else SENTINEL
            return compressed, uncompressed
        position += 4 + length
    return compressed, uncompressed


def torch_entries(file: BinaryIO, size: int) -> list[Entry]:
    """The members of the archive in ``file`` (``size`` bytes), as torch's reader sees them."""
    count, offset = _end_records(file, size)
    if count > MAX_ENTRIES or not 0 <= offset <= size:
        raise ZipDirectoryError(f"a directory of {count} entries at {offset}")
    file.seek(offset)
    entries = []
    for _ in range(count):
        header = file.read(ENTRY.size)
        if len(header) != ENTRY.size or header[:4] != b"PK\x01\x02":
            raise ZipDirectoryError("a directory entry is not where the end record says")
        fields = ENTRY.unpack(header)
        method, compressed, uncompressed = fields[4], fields[8], fields[9]
        name = file.read(fields[10])
        extra = file.read(fields[11])
        file.seek(fields[12], 1)  # the comment
        compressed, uncompressed = _zip64_sizes(extra, compressed, uncompressed)
        entries.append(Entry(name, method, compressed, uncompressed))
    return entries


def check_same_view(archive: zipfile.ZipFile, entries: list[Entry]) -> None:
    """Refuse an archive that Python's ``zipfile`` reads otherwise than torch: another
    directory, other sizes, other methods."""
    python = [(info.compress_type, info.compress_size, info.file_size)
              for info in archive.infolist()]
    torch_view = [(e.method, e.compressed, e.uncompressed) for e in entries]
    if python != torch_view:
        raise ZipDirectoryError("its zip directory reads differently to torch and to Python's "
                                "zipfile (a crafted archive)")
    unknown = {e.method for e in entries} - {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
    if unknown:
        raise ZipDirectoryError(f"compression methods {sorted(unknown)} (torch reads stored "
                                f"and deflated entries only)")
