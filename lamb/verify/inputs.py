"""What both models are fed: seeded random pixels and/or real images, through the model's preprocessing.

Both go through the shipped handler's own functions (``decode_image``, ``image_to_pixels``,
``preprocess``), so the inputs are what the deployed function would feed the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lamb.errors import InputError

DEFAULT_SAMPLES = 32
DEFAULT_SEED = 0


@dataclass(frozen=True)
class VerifyInputs:
    """What to verify with (``--samples``, ``--images``, ``--seed``, ``--preprocess``)."""

    samples: int | None = None  # seeded random inputs; None: DEFAULT_SAMPLES, or 0 with images
    images: Path | None = None  # a folder of real images, searched recursively
    seed: int = DEFAULT_SEED
    preprocess: str | None = None  # None: the manifest's, or "none" without one
    labeled_images: Path | None = None  # a folder per class, or <label>-*.ext files (lamb.verify.accuracy)

    def sample_count(self) -> int:
        """How many random samples, checked: there must be something to verify with."""
        samples = self.samples
        if samples is None:
            samples = 0 if self.images is not None or self.labeled_images is not None else DEFAULT_SAMPLES
        if samples < 0:
            raise InputError(f"--samples {samples} is negative", "use --samples 0 or more")
        if samples == 0 and self.images is None and self.labeled_images is None:
            raise InputError(
                "nothing to verify with: --samples 0 and no --images or --labeled-images",
                "use --samples N, --images DIR, --labeled-images DIR, or several",
            )
        return samples


def build_inputs(
    shapes: Sequence[Sequence[int]], inputs: VerifyInputs, samples: int, preprocess: str, labeled: np.ndarray | None = None
) -> tuple[list[np.ndarray], list[str], list[str]]:
    """One batch per model input (random samples first, then images, then the ``labeled`` images
    already preprocessed), the images used, the files skipped."""
    batches: list[list[np.ndarray]] = [[] for _ in shapes]
    used: list[str] = []
    skipped: list[str] = []
    if samples:
        for batch, x in zip(batches, random_inputs(shapes, samples, inputs.seed, preprocess)):
            batch.append(x)
    if inputs.images is not None:
        if len(shapes) != 1:
            raise InputError(
                f"--images needs a model with one image input; this one has {len(shapes)} inputs",
                "verify with --samples instead",
            )
        x, used, skipped = image_inputs(inputs.images, shapes[0], preprocess)
        batches[0].append(x)
    if labeled is not None:
        batches[0].append(labeled)
    return [np.concatenate(b) for b in batches], used, skipped


def random_inputs(shapes: Sequence[Sequence[int]], samples: int, seed: int, preprocess: str) -> list[np.ndarray]:
    """Seeded uniform random pixels in [0, 255], through the model's preprocessing.

    Drawing pixels rather than model inputs keeps the values in the range the preprocessing
    produces, which is the range the deployed function feeds the model.
    """
    from lamb.handler.lambkit import preprocess as apply_preprocess

    rng = np.random.default_rng(seed)
    arrays = []
    for shape in shapes:
        pixels = rng.uniform(0.0, 255.0, size=(samples, *shape)).astype(np.float32)
        if preprocess in ("caffe", "torch") and (not shape or shape[-1] != 3):
            raise InputError(
                f"--preprocess {preprocess} needs RGB inputs (last dimension 3); this input has shape {list(shape)}",
                "pass the preprocessing the model was trained with (--preprocess), or none",
            )
        arrays.append(apply_preprocess(pixels, preprocess))
    return arrays


def image_inputs(folder: Path, shape: Sequence[int], preprocess: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Every image under ``folder`` (sorted, recursive), decoded and preprocessed as the handler does.

    Returns the batch, the names used, and ``"<name>: <why>"`` for each file that was skipped.
    """
    from lamb.handler.lambkit import decode_image, image_to_pixels
    from lamb.handler.lambkit import preprocess as apply_preprocess

    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"no image folder at {folder}", "pass --images with a folder of .jpg/.png files")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder", "pass --images with a folder of images, not a single file")
    if len(shape) != 3 or shape[-1] != 3:
        raise InputError(
            f"--images needs a model whose input is one RGB image (height, width, 3); this one takes {list(shape)}",
            "verify with --samples instead",
        )
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts))
    if not files:
        raise InputError(f"the image folder {folder} is empty", "put a few .jpg/.png images in it, or use --samples")
    used: list[str] = []
    skipped: list[str] = []
    batch: list[np.ndarray] = []
    height, width = int(shape[0]), int(shape[1])
    for path in files:
        name = path.relative_to(folder).as_posix()
        try:
            image = decode_image(path.read_bytes())
        except ValueError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        batch.append(image_to_pixels(image, (height, width)))
        used.append(name)
    if not batch:
        raise InputError(
            f"none of the {len(files)} files in {folder} is a decodable image",
            "put .jpg/.png images in the folder, or use --samples",
        )
    return apply_preprocess(np.stack(batch), preprocess), used, skipped
