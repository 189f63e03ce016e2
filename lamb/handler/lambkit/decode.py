"""Image bytes to a decoded PIL image, within the function's pixel budget and admitted formats."""

from __future__ import annotations

import io
import warnings

from . import costs
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
    costs.check(data, formats)
    PngImagePlugin.MAX_TEXT_MEMORY = min(PngImagePlugin.MAX_TEXT_MEMORY, costs.PNG_TEXT_MEMORY)
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
