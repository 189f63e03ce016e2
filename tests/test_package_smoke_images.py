"""The smoke run's images: each row of SMOKE_IMAGES is a real file of its mode and format."""

from __future__ import annotations

import base64
import io

from PIL import Image

from lamb.package import smoke_images


def test_every_row_decodes_to_its_mode_and_format():
    for row in smoke_images.SMOKE_IMAGES:
        with Image.open(io.BytesIO(smoke_images.encode(row))) as image:
            image.load()
            assert (image.mode, image.format) == (row.mode, row.format), row


def test_events_are_direct_invocations_with_seeded_bytes():
    events = smoke_images.events()
    assert [name for name, _ in events] == [row.name for row in smoke_images.SMOKE_IMAGES]
    assert {"RGB JPEG", "RGBA PNG", "CMYK JPEG", "I;16 (16-bit greyscale) PNG", "LAB TIFF", "GIF", "WebP", "BMP"} <= dict(events).keys()
    assert events == smoke_images.events()  # same seed, same bytes
    assert base64.b64decode(dict(events)["BMP"]["image"]).startswith(b"BM")
