"""The Xception-shaped model every benchmark uses: the course's 299x299, 10-class transfer model.

``keras.applications.Xception(weights=None)``: random weights, because nothing may be downloaded
at run time and speed/size do not depend on the weight values. Built once and reused from
``benchmarks/out/`` (git-ignored), since building and saving it takes ~20 s.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "out"
INPUT_SHAPE = (299, 299, 3)
CLASSES = 10


def build_xception():
    """Xception base (no top) -> GlobalAveragePooling -> Dense(10) logits, seeded."""
    import keras

    keras.utils.set_random_seed(0)
    base = keras.applications.Xception(weights=None, include_top=False, input_shape=INPUT_SHAPE)
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = base(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name="xception_classifier")


def ensure_xception_h5(out_dir: Path | None = None) -> Path:
    """Path of ``xception_10.h5`` in ``out_dir`` (default ``benchmarks/out``), built if missing."""
    out_dir = Path(out_dir) if out_dir is not None else OUT_DIR
    path = out_dir / "xception_10.h5"
    if path.is_file() and path.stat().st_size > 0:
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from lamb.manifest import atomic_output

    out_dir.mkdir(parents=True, exist_ok=True)
    # Saved under a temp name and renamed, so an interrupted build never leaves a half file
    # that later runs would take as the model.
    placeholder = atomic_output(path)
    tmp = placeholder.with_suffix(".h5")  # Keras picks the HDF5 writer from the suffix
    placeholder.unlink()
    try:
        build_xception().save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


if __name__ == "__main__":
    target = ensure_xception_h5(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(f"{target} ({target.stat().st_size / 1e6:.1f} MB)")
