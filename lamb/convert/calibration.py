"""Calibration for full-integer quantization: images decoded and preprocessed as the deployed handler does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb.errors import InputError
from lamb.progress import current
from lamb.source import InputSpec

#: How many calibration images int8 quantization uses at most: the TensorFlow Lite docs suggest ~100-500;
#: more only costs conversion time.
MAX_CALIBRATION_IMAGES = 200
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def calibration_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise InputError(f"no calibration folder at {directory}", "pass --calibration DIR, a folder of sample images")
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise InputError(
            f"no images in {directory} (looked for {', '.join(sorted(_IMAGE_SUFFIXES))})",
            "put ~100 representative images in the calibration folder",
        )
    return files


def representative_dataset(files: list[Path], inputs: list[InputSpec], mode: str) -> tuple[Callable[[], Iterator[list]], dict]:
    """Decode, resize and preprocess the calibration images exactly as the deployed handler will (channels last)."""
    import numpy as np

    from lamb.handler.lambkit import decode_image, image_to_pixels, preprocess

    if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].image_hwc()[2] != 3:
        shapes = ", ".join(mf.format_shape(s.shape) for s in inputs)
        raise InputError(
            f"int8 calibration needs one RGB image input (batch, height, width, 3, or channel-first); the model takes {shapes}",
            "use --quantize dynamic or float16 for this model",
        )
    height, width, _ = inputs[0].image_hwc()
    samples: list[Any] = []
    skipped: list[str] = []
    progress = current()
    progress.phase("reading calibration images", total=min(len(files), MAX_CALIBRATION_IMAGES))
    for path in files:
        if len(samples) >= MAX_CALIBRATION_IMAGES:
            break
        try:
            image = decode_image(path.read_bytes())
        except ValueError:
            skipped.append(path.name)
            continue
        pixels = image_to_pixels(image, (height, width))
        samples.append(preprocess(pixels, mode)[np.newaxis, ...])
        progress.advance()
    if not samples:
        raise InputError(
            f"none of the {len(files)} calibration files could be decoded as images",
            "put real JPEG/PNG images in the calibration folder",
        )

    def dataset() -> Iterator[list]:
        for sample in samples:
            yield [sample]
            current().advance()  # the converter's pass over them (convert_model names the phase)

    return dataset, {"images": len(samples), "skipped": len(skipped), "mode": mode}
