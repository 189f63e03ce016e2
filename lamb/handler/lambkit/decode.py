"""Image bytes to a decoded PIL image, within the function's pixel budget and admitted formats."""

from __future__ import annotations

import io
import re
import struct
import warnings

from . import settings as _settings
from .deadline import Deadline, within_function_time
from .errors import ImageError
from .settings import DEFAULT_FORMATS

# Decoding holds the whole image at full size before it is resized to the model's input. Pillow
# keeps RGB, RGBA, CMYK, I and F images at 4 bytes a pixel, and a progressive JPEG also holds all
# its DCT coefficients while it decodes. Measured peak RSS added per pixel: 4.0 for a 50-megapixel
# RGBA PNG or baseline JPEG, 7.1 for a progressive JPEG (Pillow 13).
IMAGE_BYTES_PER_PIXEL = 8
# The share of the memory setting an image may take; the rest is the runtime, the model and its
# tensor arena. At 128 MB that is 32 MiB: 4.19 megapixels (2048 x 2048).
IMAGE_MEMORY_SHARE = 0.25
_UNMETERED_MAX_PIXELS = 50_000_000  # no memory setting to derive a budget from (not on Lambda)

# What a decode may cost beyond its pixels, each checked before Pillow decodes:
# - A progressive JPEG's every scan revisits every block of the components it codes, so a small
#   file of empty scans costs minutes (11 bytes a scan: 450,000 in a 6 MB request). 256 scans is
#   the default limit NVIDIA nvImageCodec sets against the same attack (cure53's libjpeg-turbo
#   audit): https://docs.nvidia.com/cuda/nvimagecodec/environment_variables.html
#   libjpeg's own progressive files have 10 scans (6 for greyscale).
MAX_JPEG_SCANS = 256
#   Every other segment (comments, APPn, tables) Pillow parses in Python and keeps: a million
#   4-byte comment markers took 2 s and 68 MB. A camera's JPEG has about 20.
MAX_JPEG_SEGMENTS = 4096
# - A TIFF's strips and tiles are each a Python object Pillow builds while opening: a 2-pixel
#   TIFF with a million strips took 304 MB and 5 s. One per 16 pixels plus 64 is more than any
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
# - Frames: only the first frame of a GIF, APNG, WebP, MPO or multi-page TIFF is decoded; the
#   others are never read, whatever their number.


def pixel_budget(memory_mb: int, explicit: int = 0) -> int:
    """The most pixels an image may have: ``explicit`` if given (``LAMB_MAX_IMAGE_PIXELS``),
    otherwise what ``IMAGE_MEMORY_SHARE`` of the memory setting holds at ``IMAGE_BYTES_PER_PIXEL``.
    Never above Pillow's own decompression-bomb limit (89.5 megapixels), which refuses first."""
    from PIL import Image

    if explicit > 0:
        budget = explicit
    elif memory_mb > 0:
        budget = int(memory_mb * 1024 * 1024 * IMAGE_MEMORY_SHARE) // IMAGE_BYTES_PER_PIXEL
    else:
        budget = _UNMETERED_MAX_PIXELS
    return min(budget, Image.MAX_IMAGE_PIXELS or budget)


def max_image_pixels() -> int:
    """This function's pixel budget, from its settings (see ``pixel_budget``)."""
    s = _settings.current()
    return pixel_budget(s.memory_mb, s.max_image_pixels)


def image_formats() -> tuple:
    """The formats this function opens (``LAMB_IMAGE_FORMATS``, else ``DEFAULT_FORMATS``)."""
    return _settings.current().image_formats or DEFAULT_FORMATS


def _budget_hint(budget: int) -> str:
    from PIL import Image

    s = _settings.current()
    if budget == Image.MAX_IMAGE_PIXELS:
        return "Pillow's decompression-bomb limit"
    if s.max_image_pixels > 0:
        return "LAMB_MAX_IMAGE_PIXELS"
    if s.memory_mb <= 0:
        return "the default; set LAMB_MAX_IMAGE_PIXELS to change it"
    return f"a quarter of the function's {s.memory_mb} MB; give it more memory or set LAMB_MAX_IMAGE_PIXELS"


def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} megapixels" if n >= 100_000 else f"{n:,} pixels"


class _DeadlineReader(io.BytesIO):
    """The image's bytes, refusing to be read once the decode's deadline passed.

    Pillow decodes from Python in chunks (``ImageFile.load`` reads 64 KiB at a time and feeds the
    decoder), so checking here bounds a decode's time by one chunk's work past the deadline.
    """

    def __init__(self, data: bytes, deadline: Deadline | None):
        super().__init__(data)
        self._deadline = deadline

    def read(self, size=-1, /):
        if self._deadline is not None:
            self._deadline.left()
        return super().read(size)


def decode_deadline(context=None) -> Deadline:
    """The function's remaining time, less the margin to answer (Lambda's longest timeout off Lambda)."""
    return within_function_time(_settings.MAX_TIMEOUT_S, "the function's timeout", context)


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


def _jpeg_segments(data: bytes, limit: int) -> tuple:
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


def _check_costs(data: bytes, formats: tuple) -> None:
    """Refuse what would cost more to open or decode than its pixels say (see the limits above)."""
    if "TIFF" in formats and data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        _check_tiff(data)
    if "JPEG" in formats and data[:2] == b"\xff\xd8":
        scans, segments = _jpeg_segments(data, MAX_JPEG_SEGMENTS)
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


# What Pillow's decoders raise on hostile bytes: a broken file is not always an OSError (the DDS
# plugin raises NotImplementedError for a pixel format it does not know; found by the fuzz test).
_DECODE_ERRORS = (
    OSError, SyntaxError, EOFError, ValueError, IndexError, KeyError, TypeError, ZeroDivisionError, OverflowError,
    NotImplementedError,
)


def decode_image(data: bytes, max_pixels: int | None = None, deadline: Deadline | None = None):
    """Bytes -> a fully loaded PIL image; raises ImageError (a ValueError) for anything that is not
    an image of an admitted format, or is over the pixel budget (``max_image_pixels()`` unless
    ``max_pixels`` is given).

    The size comes from the image's header and is checked before a pixel is decoded: a few hundred
    KB of PNG can inflate to gigabytes. Pillow only *warns* between its MAX_IMAGE_PIXELS and twice
    that, so the warning is turned into an error here too.
    """
    from PIL import Image, PngImagePlugin, UnidentifiedImageError

    budget = max_image_pixels() if max_pixels is None else max_pixels
    formats = image_formats()
    _check_costs(data, formats)
    PngImagePlugin.MAX_TEXT_MEMORY = min(PngImagePlugin.MAX_TEXT_MEMORY, PNG_TEXT_MEMORY)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(_DeadlineReader(data, deadline), formats=formats)
            width, height = image.size
            if width * height > budget:
                raise ImageError(
                    f"the image is {width}x{height}, {_pixels(width * height)}, over the pixel budget of "
                    f"{_pixels(budget)} ({_budget_hint(budget)})",
                    413,
                )
            if width * height == 0:
                raise ImageError("the image has no pixels")
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"refused a possible decompression bomb ({exc})", 413) from None
    except TimeoutError:
        raise ImageError(f"decoding the image did not finish within {deadline.why if deadline else 'its deadline'}", 413) from None
    except UnidentifiedImageError:
        raise ImageError(f"not a decodable image in a format this function opens ({', '.join(formats)}; see LAMB_IMAGE_FORMATS)") from None
    except _DECODE_ERRORS as exc:
        raise ImageError(f"not a decodable image ({exc.__class__.__name__})") from None
    return image
