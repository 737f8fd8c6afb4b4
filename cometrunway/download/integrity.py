"""Is a downloaded file whole? Checks for bodies that came with no length at all.

An answer with neither ``Content-Length`` nor chunked framing ends when the connection
closes, so a connection cut early looks exactly like a complete body. For such answers the
file itself is checked, as far as its type allows:

* MP4/MOV (ISO base media): the top-level boxes tile the file exactly and a ``moov`` box is
  present (a file cut inside ``mdat`` or before ``moov`` fails);
* PNG: the chunks run from the signature to a complete ``IEND``;
* JPEG: it starts with SOI (``FFD8``) and ends with EOI (``FFD9``), trailing zero padding
  allowed;
* MP3: it starts with an ID3 tag (whose declared size fits the file) or an MPEG frame sync.
  Frames are not walked, so an MP3 cut between frames passes.

A file of a type not recognised here passes (nothing better can be said of it) unless it is
empty. Only headers are read, so a large video costs a few reads, not a full scan.
"""

from __future__ import annotations

import os
import struct
from typing import IO

#: Box size field values with a special meaning in ISO/IEC 14496-12 §4.2.
_BOX_TO_END = 0
_BOX_LARGE_SIZE = 1
_BOX_HEADER = 8
_LARGE_BOX_HEADER = 16
#: A real MP4 has a handful of top-level boxes; many more means this is not one.
_MAX_TOP_LEVEL_BOXES = 10_000
#: Top-level box types that mark a file as ISO base media (the first box is one of these).
_MP4_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"free", b"skip", b"mdat", b"wide", b"pdin"})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND"
_PNG_CHUNK_OVERHEAD = 12  # length, type and CRC around each chunk's data
_MAX_PNG_CHUNKS = 1_000_000

_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
#: Some encoders pad a JPEG after EOI with zeros; look this far back for the marker.
_JPEG_TAIL = 4096

_ID3 = b"ID3"
_ID3_HEADER = 10


def _read_at(file: IO[bytes], offset: int, size: int) -> bytes:
    file.seek(offset)
    return file.read(size)


def _mp4_problem(file: IO[bytes], length: int) -> str | None:
    offset = 0
    seen_moov = False
    for _ in range(_MAX_TOP_LEVEL_BOXES):
        if offset == length:
            return None if seen_moov else "it has no moov box (the part that makes it playable)"
        header = _read_at(file, offset, _LARGE_BOX_HEADER)
        if len(header) < _BOX_HEADER:
            return f"a box header at byte {offset} is cut short"
        size, kind = struct.unpack(">I4s", header[:_BOX_HEADER])
        if size == _BOX_LARGE_SIZE:
            if len(header) < _LARGE_BOX_HEADER:
                return f"a box header at byte {offset} is cut short"
            (size,) = struct.unpack(">Q", header[_BOX_HEADER:])
            minimum = _LARGE_BOX_HEADER
        elif size == _BOX_TO_END:
            size = length - offset
            minimum = _BOX_HEADER
        else:
            minimum = _BOX_HEADER
        if size < minimum:
            return f"the {kind!r} box at byte {offset} has an impossible size {size}"
        if offset + size > length:
            return (
                f"the {kind.decode('latin-1')!r} box at byte {offset} needs {size} bytes "
                f"but only {length - offset} arrived"
            )
        seen_moov = seen_moov or kind == b"moov"
        offset += size
    return "it has more top-level boxes than any real video"


def _png_problem(file: IO[bytes], length: int) -> str | None:
    offset = len(_PNG_SIGNATURE)
    for _ in range(_MAX_PNG_CHUNKS):
        header = _read_at(file, offset, 8)
        if len(header) < 8:
            return "it ends before its IEND chunk"
        size, kind = struct.unpack(">I4s", header)
        end = offset + _PNG_CHUNK_OVERHEAD + size
        if end > length:
            return f"its {kind.decode('latin-1')!r} chunk at byte {offset} is cut short"
        if kind == _PNG_IEND:
            return None
        offset = end
    return "it has more chunks than any real image"


def _jpeg_problem(file: IO[bytes], length: int) -> str | None:
    start = max(0, length - _JPEG_TAIL)
    tail = _read_at(file, start, length - start).rstrip(b"\x00")
    return None if tail.endswith(_JPEG_EOI) else "it does not end with the JPEG end marker"


def _mp3_problem(file: IO[bytes], length: int, head: bytes) -> str | None:
    if head.startswith(_ID3):
        if len(head) < _ID3_HEADER:
            return "its ID3 tag header is cut short"
        # The tag size is 4 "syncsafe" bytes of 7 bits each (ID3v2 §3.1).
        size = 0
        for byte in head[6:_ID3_HEADER]:
            size = (size << 7) | (byte & 0x7F)
        if _ID3_HEADER + size > length:
            return "its ID3 tag is cut short"
    return None


def _is_mpeg_audio(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


def truncation_problem(file: IO[bytes]) -> str | None:
    """Why the file open in ``file`` looks cut short, or None when it looks whole (or its
    type is not one checked here). Moves the file position; the caller seeks as needed."""
    file.flush()
    length = os.fstat(file.fileno()).st_size
    if length == 0:
        return "the body was empty"
    head = _read_at(file, 0, _LARGE_BOX_HEADER)
    if head.startswith(_PNG_SIGNATURE):
        return _png_problem(file, length)
    if head.startswith(_JPEG_SOI):
        return _jpeg_problem(file, length)
    if head[4:8] in _MP4_FIRST_BOXES:
        return _mp4_problem(file, length)
    if head.startswith(_ID3) or _is_mpeg_audio(head):
        return _mp3_problem(file, length, head)
    return None
