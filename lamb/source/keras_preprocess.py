"""Which pixel preprocessing a Keras model shows it expects: the Keras and SavedModel sources' evidence.

lamb only infers a mode when the model itself makes it obvious: a nested ``keras.applications``
base model (the usual transfer-learning shape) or preprocessing layers at the very start of the
graph. Anything else is ``none`` with a note saying it was not inferred, because a wrong guess
here produces a deployed model that is silently, confidently wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from lamb.manifest import PREPROCESS_NOT_INFERRED as NOT_INFERRED

# keras.applications model names -> the preprocess_input mode they were trained with.
# Order matters: "resnet50v2" must match before "resnet50", "inception_resnet" before "resnet".
_APPLICATION_MODES: tuple[tuple[str, str], ...] = (
    (r"^resnet\d+v2", "xception"),
    (r"^inception_resnet", "xception"),
    (r"^xception", "xception"),
    (r"^mobilenet", "xception"),
    (r"^inception", "xception"),
    (r"^nasnet", "xception"),
    (r"^resnet\d+$", "caffe"),
    (r"^vgg\d+", "caffe"),
    (r"^densenet\d+", "torch"),
    # These ship their own Rescaling/Normalization layers: they take raw [0, 255] pixels.
    (r"^efficientnet", "none"),
    (r"^convnext", "none"),
    (r"^regnet", "none"),
)

# Layer names only one application family uses, for models built "flat" on an application's
# output tensors (no nested base model to name).
_SIGNATURE_LAYERS = {"block14_sepconv2_act": "xception"}


# The first operations of a graph that runs preprocess_input itself: tf_keras records them as
# TFOpLambda layers, Keras 3 as operations (not layers) named after the op.
_ARITHMETIC_OPS = {"TrueDivide", "Divide", "Multiply", "Subtract", "Add"}

# A leading Lambda layer whose output spans less than this on [0, 255] pixels scales them itself.
_SCALED_SPAN = 16.0


def infer_preprocess(model: Any) -> tuple[str, str]:
    """(mode, note) for a Keras 3 or tf_keras model."""
    layers = list(getattr(model, "layers", []) or [])
    # Checked first: a course model often wraps a keras.applications base *and* rescales inside
    # the graph; then it takes raw pixels, whatever the base is (scaling twice is garbage).
    operations = list(getattr(model, "operations", None) or layers)
    first = _first_computing_layer(operations)
    if first is not None:
        in_graph = _rescales(model, first)
        if in_graph is not None:
            return "none", f"inferred: {in_graph}, so it takes raw [0, 255] pixels"
    for layer in [model, *layers]:
        if layer is not model and not hasattr(layer, "layers"):
            continue
        name = str(getattr(layer, "name", "")).lower()
        for pattern, mode in _APPLICATION_MODES:
            if re.match(pattern, name):
                what = "the model" if layer is model else f"its base model {getattr(layer, 'name', '')!r}"
                return mode, f"inferred: {what} is a keras.applications network trained with {mode!r} preprocessing"
    for layer in layers:
        name = str(getattr(layer, "name", ""))
        if name in _SIGNATURE_LAYERS:
            mode = _SIGNATURE_LAYERS[name]
            return mode, f"inferred: layer {name!r} belongs to a keras.applications {mode} network"
    fits = batchnorm_fit(model)
    if fits is not None:
        return "none", f"{NOT_INFERRED}: nothing in the model names its preprocessing; {fits.says()}"
    return "none", f"{NOT_INFERRED}: nothing in the model shows its preprocessing; pass --preprocess if it was trained on scaled pixels"


def _rescales(model: Any, first: Any) -> str | None:
    """What shows that the graph's first layer rescales the pixels itself, or None."""
    cls = first.__class__.__name__
    if cls in ("Rescaling", "Normalization"):
        return f"the model starts with a {cls} layer ({first.name!r})"
    if cls in _ARITHMETIC_OPS or (
        cls in ("TFOpLambda", "SlicingOpLambda") and re.search(r"truediv|multiply|subtract|add|divide", first.name)
    ):
        return f"the model's graph starts with arithmetic ({first.name!r}), i.e. preprocess_input inside the model"
    if cls == "Lambda":
        span = _lambda_span(model, first)
        if span is not None and span[1] - span[0] < _SCALED_SPAN:
            return f"the model starts with a Lambda layer ({first.name!r}) that maps [0, 255] pixels to [{span[0]:.3g}, {span[1]:.3g}]"
    return None


def _lambda_span(model: Any, layer: Any) -> tuple[float, float] | None:
    """The range a Lambda layer's output spans on pixels from 0 to 255 (None when it cannot be run)."""
    import numpy as np

    inputs = getattr(model, "inputs", None)
    if not inputs:
        return None
    shape = [int(d) if d else 8 for d in list(inputs[0].shape)[1:]]
    pixels = np.linspace(0.0, 255.0, int(np.prod(shape)), dtype=np.float32).reshape(1, *shape)
    try:
        out = np.asarray(layer(pixels))
    except Exception:  # noqa: BLE001 - the user's own Python code: whatever it raises, it shows nothing
        return None
    if not out.size or not np.isfinite(out).all():
        return None
    return float(out.min()), float(out.max())


def preprocess_evidence(model: Any, given: str) -> str | None:
    """A warning when ``given`` contradicts what the model shows (its base model, a layer that
    rescales, its first BatchNormalization's statistics); None when it shows nothing or agrees."""
    inferred, note = infer_preprocess(model)
    check = "check it with `lamb verify --labeled-images DIR`, or pass --allow-preprocess-mismatch if you are sure"
    if not note.startswith(NOT_INFERRED):
        if inferred == given:
            return None
        return f"--preprocess {given} given, but the model says {inferred}: {note.removeprefix('inferred: ')}; {check}"
    fits = batchnorm_fit(model)
    if fits is None or given in fits.consistent():
        return None
    return f"--preprocess {given} given, but {fits.says(given)}; {check}"


# -- what the first BatchNormalization layer saw in training ----------------------------------------
# A BatchNormalization layer keeps the variance of its input over the training data. When it
# follows the input through linear layers only, its input's variance scales with the square of the
# preprocessing's scale: raw pixels (none, caffe) reach it ~16,000x larger than x / 127.5 - 1. Fed
# a few smooth synthetic images (photographs' energy is at low frequencies; per-pixel noise would
# light every edge filter) under each mode, the mode whose variances match is the trained one, up
# to what the images cannot tell: xception, torch and scale differ by 2-5x, raw pixels by 10,000x.
_LINEAR_LAYERS = {"InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "ZeroPadding2D", "Conv1D"}
_CLEARLY_OFF = math.log(16.0)  # variances 16x apart (scale 4x): a mode contradicted, not a close call


@dataclass
class BatchNormFit:
    """How far each mode's activations at the first BatchNormalization are from its training's."""

    layer: str
    misfit: dict[str, float]  # mode -> median over channels of |ln(variance seen / moving variance)|

    def best(self) -> str:
        return min(self.misfit, key=lambda mode: self.misfit[mode])

    def consistent(self) -> list[str]:
        floor = self.misfit[self.best()]
        return [mode for mode, off in sorted(self.misfit.items(), key=lambda kv: kv[1]) if off - floor < _CLEARLY_OFF]

    def says(self, mode: str = "none") -> str:
        """One clause: how far ``mode`` is off, and which modes fit."""
        fit = self.consistent()
        either = fit[0] if len(fit) == 1 else f"{', '.join(fit[:-1])} or {fit[-1]}"
        return (
            f"under {mode}, its first BatchNormalization layer ({self.layer!r}) sees activations "
            f"{_times(math.exp(self.misfit[mode]))} off the variance it was trained on; {either} fit{'s' if len(fit) == 1 else ''} it"
        )


def _times(factor: float) -> str:
    return f"{factor:,.0f}x" if factor >= 10 else f"{factor:.1f}x"


def batchnorm_fit(model: Any, size: int = 6) -> BatchNormFit | None:
    """The first BatchNormalization reached from the input through linear layers only, fed ``size``
    smooth synthetic images under each mode; None when the model has no such layer."""
    layers = list(getattr(model, "layers", []) or [])
    first = next((i for i, layer in enumerate(layers) if layer.__class__.__name__ == "BatchNormalization"), None)
    inputs = getattr(model, "inputs", None)
    if first is None or not inputs or len(inputs) != 1 or any(
        layer.__class__.__name__ not in _LINEAR_LAYERS for layer in layers[:first]
    ):
        return None
    shape = [int(d) if d else 0 for d in list(inputs[0].shape)[1:]]
    if len(shape) != 3 or shape[-1] != 3 or not all(shape):
        return None
    import importlib

    import numpy as np

    bn = layers[first]
    framework = importlib.import_module("tf_keras" if type(model).__module__.startswith("tf_keras") else "keras")
    probe = framework.Model(inputs, bn.input)
    moving = np.asarray(bn.moving_variance, dtype=np.float64)
    pixels = _smooth_images(size, shape[0], shape[1])
    misfit = {}
    from lamb.handler.lambkit import PREPROCESSORS, preprocess

    for mode in PREPROCESSORS:
        seen = np.asarray(probe([preprocess(pixels, mode)], training=False), dtype=np.float64)
        variance = seen.reshape(-1, seen.shape[-1]).var(axis=0)
        misfit[mode] = float(np.median(np.abs(np.log((variance + 1e-12) / (moving + 1e-12)))))
    return BatchNormFit(bn.name, misfit)


def _smooth_images(n: int, height: int, width: int) -> Any:
    """Seeded low-frequency RGB images in [0, 255]: a 6x6 grid of random colours, smoothly resized."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    grids = rng.integers(0, 256, size=(n, 6, 6, 3), dtype=np.uint8)
    return np.stack([
        np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32) for grid in grids
    ])


def _first_computing_layer(layers: list[Any]) -> Any | None:
    for layer in layers:
        if layer.__class__.__name__ == "InputLayer":
            continue
        return layer
    return None
