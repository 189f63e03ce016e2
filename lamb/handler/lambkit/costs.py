"""What a decode may cost beyond its pixels, counted from the file's own structure before Pillow
opens it: each limit below is a turn of a Python loop, an object kept, or a pass of a C decoder
that the header's width and height do not bound. ``check`` refuses (ImageError, 413) what passes one.

Frames need no count: only the first frame of a GIF, APNG, WebP, MPO or multi-page TIFF is ever
decoded, whatever their number.
"""

from __future__ import annotations

import re
import struct

from .errors import ImageError

# - A progressive JPEG's every scan revisits every block of the components it codes, so a small
#   file of empty scans costs minutes (11 bytes a scan: 450,000 in a 6 MB request). 256 scans is
#   the default limit NVIDIA nvImageCodec sets against the same attack (cure53's libjpeg-turbo
#   audit): https://docs.nvidia.com/cuda/nvimagecodec/environment_variables.html
#   libjpeg's own progressive files have 10 scans (6 for greyscale).
MAX_JPEG_SCANS = 256
# - A JPEG's other segments (comments, APPn, tables) Pillow parses in Python and keeps: a million
#   4-byte comment markers took 2 s and 68 MB. A camera's JPEG has about 20.
MAX_JPEG_SEGMENTS = 4096
# - A TIFF's strips and tiles are each a Python object Pillow builds while opening: a 2-pixel
#   TIFF with a million strips took 304 MB and 5 s on Lambda (issue 17), 99 MB with Pillow 13. One per 16 pixels plus 64 is more than any
#   writer makes (libtiff aims at 8 KiB strips, Pillow at 64 KiB).
TIFF_PIXELS_PER_STRIP = 16
TIFF_MIN_STRIPS = 64
# - PNG text chunks (zTXt, iTXt) decompress inside Image.open: Pillow allows 64 MiB of them in
#   all, half a 128 MB function. A classifier reads none of them; 1 MiB in all is plenty.
PNG_TEXT_MEMORY = 1024 * 1024
# - PNG chunks and GIF extension blocks are each a turn of a Python loop in Pillow: 450,000 empty
#   PNG chunks in a 6 MB request cost 1 s of CPU, 14 s at 128 MB's share of a vCPU. A PNG may have
#   1,024 chunks plus two per row (some writers emit an IDAT per row); a GIF 4,096 extension
#   sub-blocks before its first image (1 MB of comments and XMP).
PNG_CHUNKS_PER_ROW = 2
PNG_MIN_CHUNKS = 1024
MAX_GIF_BLOCKS = 4096
# - BMP's run-length decoder is Python too, a turn per 2-byte code whatever it draws: a few
#   pixels with 4 MB of zero-length moves took 1 s. Run lengths of 1 take 2 bytes a pixel; 4 per
#   pixel, plus 1 KiB, is more than a real RLE bitmap needs.
BMP_RLE_BYTES_PER_PIXEL = 4


def _tiff_fields(data: bytes, tags: tuple) -> dict:
    """{tag: (type, count, inline value bytes)} from a TIFF's first directory, read without Pillow
    (Pillow materialises every strip while opening, which is the cost being bounded)."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\0", b"\0+")  # BigTIFF: 8-byte counts and offsets, 20-byte entries
    word, entry, head = ("Q", 20, 8) if big else ("I", 12, 2)
    (ifd,) = struct.unpack_from(order + word, data, 8 if big else 4)
    (entries,) = struct.unpack_from(order + ("Q" if big else "H"), data, ifd)
    found = {}
    for i in range(min(entries, 65535)):
        at = ifd + head + i * entry
        tag, kind = struct.unpack_from(order + "HH", data, at)
        if tag in tags:
            (count,) = struct.unpack_from(order + word, data, at + 4)
            found[tag] = (order, kind, count, data[at + 4 + struct.calcsize(word) : at + entry])
    return found


def _tiff_int(field) -> int:
    order, kind, _count, value = field
    fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
    return struct.unpack_from(order + fmt, value)[0] if fmt else 0


def _check_tiff(data: bytes) -> None:
    try:
        fields = _tiff_fields(data, (256, 257, 273, 324))  # width, length, strip and tile offsets
    except struct.error:
        raise ImageError("not a decodable image (a TIFF whose first directory is cut short)") from None
    width = _tiff_int(fields[256]) if 256 in fields else 0
    height = _tiff_int(fields[257]) if 257 in fields else 0
    pieces = max(fields.get(273, (0, 0, 0, b""))[2], fields.get(324, (0, 0, 0, b""))[2])
    allowed = TIFF_MIN_STRIPS + width * height // TIFF_PIXELS_PER_STRIP
    if pieces > allowed:
        raise ImageError(
            f"the TIFF has {pieces:,} strips or tiles for {width}x{height} pixels, more than the {allowed:,} "
            f"a real one has (one per {TIFF_PIXELS_PER_STRIP} pixels, plus {TIFF_MIN_STRIPS})",
            413,
        )


# A marker outside entropy-coded data: 0xFF followed by anything but a stuffed 0x00, a restart
# marker (RST0-7) or another 0xFF (fill).
_JPEG_MARKER = re.compile(b"\xff[^\x00\xff\xd0-\xd7]")


def jpeg_segments(data: bytes, limit: int) -> tuple:
    """(scans, segments) a JPEG holds, counted until either passes its limit (``MAX_JPEG_SCANS``,
    ``limit``) by walking its segments: a scan's entropy-coded data runs to the next marker."""
    at, scans, segments = 2, 0, 0
    while at + 4 <= len(data) and segments <= limit:
        found = _JPEG_MARKER.search(data, at)
        if found is None:
            break
        at = found.start()
        marker = data[at + 1]
        if marker == 0xD9:  # EOI
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length: TEM, RSTn, SOI
            at += 2
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        segments += 1
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                break
    return scans, segments


def _png_chunks(data: bytes, limit: int) -> int:
    """How many chunks a PNG holds, counted up to ``limit + 1`` by their length fields."""
    at, chunks = 8, 0
    while at + 8 <= len(data) and chunks <= limit:
        chunks += 1
        if data[at + 4 : at + 8] == b"IEND":
            break
        at += 12 + int.from_bytes(data[at : at + 4], "big")
    return chunks


def _gif_blocks(data: bytes, limit: int) -> int:
    """How many extension sub-blocks come before a GIF's first image, counted up to ``limit + 1``."""
    if len(data) < 13:
        return 0
    flags = data[10]
    at, blocks = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0), 0  # after the global colour table
    while at < len(data) and data[at] == 0x21 and blocks <= limit:  # an extension: label, sub-blocks, 0
        at += 2
        while at < len(data) and blocks <= limit:
            size = data[at]
            at += 1 + size
            blocks += 1
            if size == 0:
                break
    return blocks


def _check_bmp(data: bytes) -> None:
    pixels_at, header = struct.unpack_from("<II", data, 10)
    if header < 40:  # OS/2's 12-byte header: no compression field, never run-length
        return
    width, height, _planes, _bits, compression = struct.unpack_from("<iiHHI", data, 18)
    if compression in (1, 2):  # RLE8, RLE4: decoded by Pillow in Python
        allowed = BMP_RLE_BYTES_PER_PIXEL * abs(width) * abs(height) + 1024
        if len(data) - pixels_at > allowed:
            raise ImageError(f"the BMP's run-length data is {len(data) - pixels_at:,} bytes for {abs(width)}x{abs(height)} pixels, more than {allowed:,}", 413)


def check(data: bytes, formats: tuple) -> None:
    """Refuse what would cost more to open or decode than its pixels say (see the limits above)."""
    if "TIFF" in formats and data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        _check_tiff(data)
    if "JPEG" in formats and data[:2] == b"\xff\xd8":
        scans, segments = jpeg_segments(data, MAX_JPEG_SEGMENTS)
        if scans > MAX_JPEG_SCANS:
            raise ImageError(f"the JPEG has more than {MAX_JPEG_SCANS} scans; a real progressive JPEG has about 10", 413)
        if segments > MAX_JPEG_SEGMENTS:
            raise ImageError(f"the JPEG has more than {MAX_JPEG_SEGMENTS:,} segments; a real one has about 20", 413)
    if "PNG" in formats and data[:8] == b"\x89PNG\r\n\x1a\n":
        rows = min(int.from_bytes(data[20:24], "big"), 1 << 16)  # IHDR's height
        limit = PNG_MIN_CHUNKS + PNG_CHUNKS_PER_ROW * rows
        if _png_chunks(data, limit) > limit:
            raise ImageError(f"the PNG has more than {limit:,} chunks for its {rows:,} rows", 413)
    if "BMP" in formats and data[:2] == b"BM" and len(data) >= 34:
        _check_bmp(data)
    if "GIF" in formats and data[:6] in (b"GIF87a", b"GIF89a") and _gif_blocks(data, MAX_GIF_BLOCKS) > MAX_GIF_BLOCKS:
        raise ImageError(f"the GIF has more than {MAX_GIF_BLOCKS:,} extension blocks before its image", 413)
