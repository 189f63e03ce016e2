"""Regenerate lamb's bundled demo model: a small clothing classifier trained on drawn images.

Run from the repository root (under two minutes on two CPU cores)::

    .venv/bin/python models/make_demo.py

It draws its own data set (no downloads): silhouettes of five kinds of clothing, with random
colours, sizes, positions, rotations, backgrounds, stripes, clutter and noise. It then trains a
small CNN shaped like the ML Zoomcamp clothing model (RGB input, Xception-style preprocessing done
*outside* the model, logits out, no softmax), and writes into ``models/demo/``:

- ``clothing.h5``     the model, saved by tf_keras (Keras 2), as most course models were;
- ``labels.txt``      the class names, one per line, in the order of the model's outputs;
- ``samples/*.png``   two held-out images per class, drawn from a seed the training never sees;
- ``README.md``       what the model is, its validation accuracy, and how to regenerate it.

Everything is seeded, so a re-run draws the same images and, with TensorFlow's op determinism on
CPU, trains the same weights.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO_ROOT = Path(__file__).resolve().parent.parent
# The preprocessing must be the one the deployed handler applies, byte for byte, or the model would
# be trained on inputs the Lambda function never produces; import it rather than copy it.
sys.path.insert(0, str(REPO_ROOT))
from lamb.handler.lambkit import preprocess  # noqa: E402

LABELS = ["dress", "hat", "pants", "shoes", "t-shirt"]
IMAGE_SIZE = 96
PREPROCESS = "xception"
SEED = 1234
TRAIN_PER_CLASS = 480
VAL_PER_CLASS = 120
SAMPLES_PER_CLASS = 2
EPOCHS = 10
BATCH_SIZE = 32

# Separate seeds per split: the validation images and the bundled samples are never training images.
TRAIN_SEED, VAL_SEED, SAMPLE_SEED = SEED, SEED + 1, SEED + 2

# -- drawing ------------------------------------------------------------------------------------
# Each garment is a list of polygons in a unit frame (x right, y down, roughly within [-1, 1]),
# each with a colour role: "main" (the garment colour), "dark" (a darker shade), "accent".


def _ellipse(cx, cy, rx, ry, start=0.0, end=360.0, n=28):
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(start, end, n)
    ]


def _tshirt(rng):
    sleeve = rng.uniform(0.15, 0.35)  # sleeve length varies
    width = rng.uniform(0.4, 0.5)
    neck = _ellipse(0.0, -0.55, 0.18, rng.uniform(0.1, 0.2), 0, 180)[::-1]
    body = [
        (-0.18, -0.55), (-width - 0.05, -0.45), (-width - 0.05 - sleeve, -0.1),
        (-width - sleeve + 0.1, 0.05), (-width, -0.2), (-width, 0.6),
        (width, 0.6), (width, -0.2), (width + sleeve - 0.1, 0.05),
        (width + 0.05 + sleeve, -0.1), (width + 0.05, -0.45), (0.18, -0.55),
    ]
    # the neckline runs from right to left between the shoulder points
    return [(body + neck[::-1], "main")]


def _pants(rng):
    hem = rng.uniform(0.3, 0.45)  # half-width at the ankles: skinny to wide
    crotch = rng.uniform(-0.15, 0.05)
    gap = rng.uniform(0.03, 0.1)
    outline = [
        (-0.38, -0.6), (0.38, -0.6), (hem + 0.02, 0.7), (gap, 0.7), (0.0, crotch),
        (-gap, 0.7), (-hem - 0.02, 0.7),
    ]
    waistband = [(-0.38, -0.6), (0.38, -0.6), (0.375, -0.5), (-0.375, -0.5)]
    return [(outline, "main"), (waistband, "dark")]


def _dress(rng):
    waist = rng.uniform(0.12, 0.2)
    hem = rng.uniform(0.45, 0.65)
    waist_y = rng.uniform(-0.2, 0.0)
    outline = [
        (-0.22, -0.45), (-0.17, -0.7), (-0.1, -0.7), (-0.05, -0.5), (0.05, -0.5),
        (0.1, -0.7), (0.17, -0.7), (0.22, -0.45), (waist, waist_y), (hem, 0.7),
        (0.0, 0.74), (-hem, 0.7), (-waist, waist_y),
    ]
    belt = [(-waist - 0.01, waist_y - 0.05), (waist + 0.01, waist_y - 0.05),
            (waist + 0.01, waist_y + 0.04), (-waist - 0.01, waist_y + 0.04)]
    parts = [(outline, "main")]
    if rng.random() < 0.6:
        parts.append((belt, "accent"))
    return parts


def _hat(rng):
    brim = rng.uniform(0.6, 0.85)
    crown_w = rng.uniform(0.32, 0.45)
    crown_h = rng.uniform(0.35, 0.6)
    top = _ellipse(0.0, -crown_h + crown_w * 0.5, crown_w, crown_w * 0.6, 180, 360)
    crown = [(-crown_w, 0.2), *top, (crown_w, 0.2)]
    brim_poly = _ellipse(0.0, 0.2, brim, rng.uniform(0.1, 0.18))
    band = [(-crown_w, 0.05), (crown_w, 0.05), (crown_w, 0.15), (-crown_w, 0.15)]
    return [(brim_poly, "dark"), (crown, "main"), (band, "accent")]


def _shoes(rng):
    toe = _ellipse(0.45, 0.2, 0.3, 0.22, -90, 90)
    upper = [(-0.7, 0.35), (-0.72, -0.2), (-0.45, -0.25), (-0.25, -0.05), *toe, (0.45, 0.35)]
    sole = [(-0.74, 0.32), (0.7, 0.32), (0.78, 0.42), (-0.74, 0.45)]
    laces = [(-0.2, -0.05), (0.2, 0.0), (0.15, 0.06), (-0.22, 0.02)]
    return [(upper, "main"), (sole, "dark"), (laces, "accent")]


GARMENTS = {"dress": _dress, "hat": _hat, "pants": _pants, "shoes": _shoes, "t-shirt": _tshirt}


def _colour(rng, lo=0, hi=255):
    return tuple(int(v) for v in rng.integers(lo, hi + 1, size=3))


def _contrasting(rng, backgrounds):
    """A colour far enough from both ends of the background gradient that the garment stays visible."""
    for _ in range(100):
        colour = _colour(rng)
        if all(sum(abs(a - b) for a, b in zip(colour, bg)) > 160 for bg in backgrounds):
            return colour
    return tuple(255 - v for v in backgrounds[0])


def draw_garment(label: str, rng: np.random.Generator, size: int = IMAGE_SIZE) -> Image.Image:
    """One RGB image of ``label``, ``size`` x ``size``, drawn at 2x and downsampled (anti-aliased)."""
    canvas = size * 2
    bg_a, bg_b = _colour(rng), _colour(rng)
    # a vertical gradient background, like a photo's uneven lighting
    t = np.linspace(0.0, 1.0, canvas, dtype=np.float32)[:, None, None]
    gradient = (1 - t) * np.array(bg_a, np.float32) + t * np.array(bg_b, np.float32)
    image = Image.fromarray(np.broadcast_to(gradient, (canvas, canvas, 3)).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)

    # clutter behind the garment, so the class is not "whatever is not background"
    for _ in range(int(rng.integers(0, 4))):
        x, y = rng.uniform(0, canvas, size=2)
        r = rng.uniform(canvas * 0.03, canvas * 0.12)
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=_colour(rng))
        else:
            draw.rectangle([x - r, y - r * 0.6, x + r, y + r * 0.6], fill=_colour(rng))

    main = _contrasting(rng, (bg_a, bg_b))
    dark = tuple(int(v * rng.uniform(0.35, 0.7)) for v in main)
    accent = _contrasting(rng, (bg_a, bg_b))  # stripes in a background colour would cut the shape apart
    colours = {"main": main, "dark": dark, "accent": accent}

    scale = canvas * rng.uniform(0.3, 0.45)
    sx = scale * rng.uniform(0.85, 1.15)
    sy = scale * rng.uniform(0.85, 1.15)
    angle = math.radians(rng.uniform(-20, 20))
    flip = -1.0 if rng.random() < 0.5 else 1.0
    cx = canvas / 2 + rng.uniform(-0.12, 0.12) * canvas
    cy = canvas / 2 + rng.uniform(-0.12, 0.12) * canvas
    cos, sin = math.cos(angle), math.sin(angle)

    def place(points):
        out = []
        for px, py in points:
            x, y = px * flip * sx, py * sy
            out.append((cx + x * cos - y * sin, cy + x * sin + y * cos))
        return out

    parts = GARMENTS[label](rng)
    for points, role in parts:
        draw.polygon(place(points), fill=colours[role])
    if rng.random() < 0.35:  # stripes on the garment's main part
        mask = Image.new("L", image.size, 0)
        ImageDraw.Draw(mask).polygon(place(parts[0][0]), fill=255)
        stripes = Image.new("RGB", image.size, accent)
        band = Image.new("L", image.size, 0)
        band_draw = ImageDraw.Draw(band)
        step = int(rng.integers(8, 20))
        for y in range(0, canvas, step * 2):
            band_draw.rectangle([0, y, canvas, y + step - 1], fill=255)
        band = band.rotate(math.degrees(angle), resample=Image.NEAREST)
        image.paste(stripes, mask=Image.fromarray(np.minimum(np.asarray(mask), np.asarray(band))))

    image = image.resize((size, size), Image.LANCZOS)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.normal(0.0, rng.uniform(0.0, 12.0), size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), "RGB")


def make_split(seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of every label: (uint8 pixels (N, H, W, 3), int labels (N,)), shuffled."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for index, label in enumerate(LABELS):
        for _ in range(per_class):
            images.append(np.asarray(draw_garment(label, rng)))
            labels.append(index)
    order = rng.permutation(len(labels))
    return np.stack(images)[order], np.array(labels, dtype=np.int64)[order]


# -- the model ----------------------------------------------------------------------------------


def build_model(tf_keras):
    """A small CNN with the course model's interface: (None, H, W, 3) float32 in, logits out."""
    layers = tf_keras.layers
    inputs = tf_keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="input_image")
    x = inputs
    # A strided stem: full-resolution convolutions would triple the training time on two cores
    # and the silhouettes are large enough to survive it.
    for filters, strides, pool in ((16, 2, True), (32, 1, True), (64, 1, True), (64, 1, False)):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(len(LABELS), name="logits")(x)  # no softmax, as in the course model
    return tf_keras.Model(inputs, outputs, name="lamb_demo_clothing")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    import tensorflow as tf

    tf.random.set_seed(seed)
    # Same weights on every run: deterministic kernels, and no inter-op races between threads.
    tf.config.experimental.enable_op_determinism()


def write_readme(out_dir: Path, *, h5_name: str, params: int, val_accuracy: float,
                 predictions: list[tuple[str, str, float]]) -> None:
    # Nothing run-dependent (like the training time) goes in here: a re-run must not dirty the tree.
    rows = "\n".join(f"| `samples/{name}` | {label} | {prob:.3f} |" for name, label, prob in predictions)
    text = f"""# The demo model

A small CNN that classifies drawn clothing silhouettes into {len(LABELS)} classes:
{", ".join(f"`{label}`" for label in LABELS)}. It is lamb's bundled example, shaped like the ML
Zoomcamp clothing model that the tool was written for:

- input `(None, {IMAGE_SIZE}, {IMAGE_SIZE}, 3)` float32, RGB;
- preprocessing **outside** the model, Xception-style: `x / 127.5 - 1` (lamb's `--preprocess xception`);
- output `(None, {len(LABELS)})` **logits** (no softmax);
- saved as a Keras 2 `.h5` by `tf_keras` (as most course models were saved with `tf.keras`).

| file | what |
|---|---|
| `{h5_name}` | the trained model ({params:,} parameters) |
| `labels.txt` | class names, one per line, in output order |
| `samples/` | {len(predictions)} held-out images ({SAMPLES_PER_CLASS} per class, never seen in training), named `<label>-<n>.png` |

Validation accuracy: **{val_accuracy:.1%}** on {VAL_PER_CLASS * len(LABELS)} held-out images
(chance is {1 / len(LABELS):.0%}). Trained on {TRAIN_PER_CLASS * len(LABELS)} images for {EPOCHS}
epochs (about a minute on two CPU cores).

What the Keras model says about the samples (softmax of its logits, computed by the script), so
the converted and deployed model can be checked against it:

| image | predicted | probability |
|---|---|---|
{rows}

The images are drawn by `models/make_demo.py` itself (no downloads): garment polygons with random
colours, sizes, positions, rotations, flips, gradient backgrounds, clutter, stripes, blur and noise.

## Use it with lamb

```sh
lamb convert models/demo/{h5_name} --preprocess {PREPROCESS} --labels-file models/demo/labels.txt
```

## Regenerate it

```sh
.venv/bin/python models/make_demo.py
```

Everything is seeded (data, shuffling, initial weights, dropout) and TensorFlow's op determinism is
on, so a re-run draws the same images and trains the same weights on the same machine and
TensorFlow version.
"""
    (out_dir / "README.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "demo",
                        help="output directory (default: models/demo next to this script)")
    args = parser.parse_args(argv)
    out_dir: Path = args.out

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    seed_everything(SEED)
    import tensorflow as tf
    import tf_keras

    tf.get_logger().setLevel("ERROR")
    # tf_keras calls HDF5 "legacy"; it is what the course models are, which is the point here.
    warnings.filterwarnings("ignore", module=r"(tf_keras|keras|tensorflow|h5py)(\.|$)")
    tf_keras.utils.set_random_seed(SEED)

    started = time.perf_counter()
    x_train, y_train = make_split(TRAIN_SEED, TRAIN_PER_CLASS)
    x_val, y_val = make_split(VAL_SEED, VAL_PER_CLASS)
    print(f"drew {len(x_train)} training and {len(x_val)} validation images "
          f"in {time.perf_counter() - started:.1f} s")

    model = build_model(tf_keras)
    model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate=tf_keras.optimizers.schedules.CosineDecay(
            3e-3, decay_steps=EPOCHS * math.ceil(len(x_train) / BATCH_SIZE))),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    model.fit(
        preprocess(x_train, PREPROCESS), y_train,
        validation_data=(preprocess(x_val, PREPROCESS), y_val),
        epochs=EPOCHS, batch_size=BATCH_SIZE, shuffle=True, verbose=2,
    )
    train_seconds = time.perf_counter() - started
    _, val_accuracy = model.evaluate(preprocess(x_val, PREPROCESS), y_val, verbose=0)
    print(f"validation accuracy {val_accuracy:.4f} after {train_seconds:.1f} s of training")

    out_dir.mkdir(parents=True, exist_ok=True)
    h5_path = out_dir / "clothing.h5"
    tmp_path = h5_path.with_name(h5_path.name + ".tmp.h5")
    model.save(tmp_path, save_format="h5", include_optimizer=False)
    os.replace(tmp_path, h5_path)  # never leave a half-written model behind
    (out_dir / "labels.txt").write_text("".join(f"{label}\n" for label in LABELS))

    samples_dir = out_dir / "samples"
    samples_dir.mkdir(exist_ok=True)
    for stale in samples_dir.glob("*.png"):
        stale.unlink()
    rng = np.random.default_rng(SAMPLE_SEED)
    names, images = [], []
    for label in LABELS:
        for n in range(1, SAMPLES_PER_CLASS + 1):
            image = draw_garment(label, rng)
            image.save(samples_dir / f"{label}-{n}.png", optimize=True)
            names.append(f"{label}-{n}.png")
            images.append(np.asarray(image))
    logits = model.predict(preprocess(np.stack(images), PREPROCESS), verbose=0)
    probs = tf.nn.softmax(logits).numpy()
    predictions = [(name, LABELS[int(p.argmax())], float(p.max())) for name, p in zip(names, probs)]

    write_readme(out_dir, h5_name=h5_path.name, params=model.count_params(),
                 val_accuracy=val_accuracy, predictions=predictions)
    correct = sum(name.rsplit("-", 1)[0] == label for name, label, _ in predictions)
    print(f"wrote {h5_path} ({h5_path.stat().st_size / 1024:.0f} KiB, {model.count_params():,} "
          f"parameters), labels.txt, {len(names)} samples ({correct} classified correctly) "
          f"and README.md to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
