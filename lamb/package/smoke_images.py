"""The images a smoke run sends: one per mode and format Pillow's wheels decode.

Slimming removes parts of Pillow (and a LAB TIFF needs ``PIL/_imagingcms`` to become RGB), so a
single JPEG proves little about what the slimmed function still decodes. The smoke run sends each
of these to the built handler; every one must answer with scores (they are good input: a 4xx
would mean the function cannot decode them, a 500 that it broke). One row per variant: adding a
format is one line.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass


@dataclass(frozen=True)
class SmokeImage:
    name: str  # "LAB TIFF"
    mode: str  # the PIL mode the file holds
    format: str  # the PIL format it is saved in


SMOKE_IMAGES: tuple[SmokeImage, ...] = (
    SmokeImage("RGB JPEG", "RGB", "JPEG"),
    SmokeImage("RGBA PNG", "RGBA", "PNG"),
    SmokeImage("L (greyscale) PNG", "L", "PNG"),
    SmokeImage("P (palette) PNG", "P", "PNG"),
    SmokeImage("CMYK JPEG", "CMYK", "JPEG"),
    SmokeImage("I;16 (16-bit greyscale) PNG", "I;16", "PNG"),
    SmokeImage("LAB TIFF", "LAB", "TIFF"),
    SmokeImage("GIF", "P", "GIF"),
    SmokeImage("WebP", "RGB", "WEBP"),
    SmokeImage("BMP", "RGB", "BMP"),
)

# Small: the handler resizes to the model's input anyway, and ten invocations must stay quick.
_SIZE = (80, 64)  # width, height


def encode(image: SmokeImage, seed: int = 0) -> bytes:
    """The image's file bytes: seeded pixels, converted to its mode, saved in its format."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, size=(_SIZE[1], _SIZE[0], 3), dtype=np.uint8))
    if image.mode == "I;16":
        picture = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    else:
        picture = rgb.convert(image.mode)
    # Pillow's LAB conversion attaches an ICC profile stamped with the time it was made: dropping
    # it keeps the bytes a function of the seed alone (the handler converts LAB without it).
    picture.info.pop("icc_profile", None)
    buf = io.BytesIO()
    picture.save(buf, format=image.format)
    return buf.getvalue()


def events(seed: int = 0) -> list[tuple[str, dict]]:
    """(name, direct-invocation event) for every row of ``SMOKE_IMAGES``."""
    return [(img.name, {"image": base64.b64encode(encode(img, seed)).decode("ascii")}) for img in SMOKE_IMAGES]
