"""Shared fixtures. Small real models, real files under tmp dirs; no mocked TensorFlow.

Sections are owned by area (convert / verify / package / invoke); add fixtures to your own section.
"""

from __future__ import annotations

import os

# Before anything imports TensorFlow: keep its C++ log noise out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402

# -- shared ------------------------------------------------------------------------------------

# -- convert -----------------------------------------------------------------------------------
# Tiny real models (seconds to build) and their conversions, shared by every area's tests.

TINY_LABELS = ["cat", "dog", "bird", "fish"]


def build_tiny_classifier():
    """A small Keras 3 CNN: 32x32 RGB in, 4-class logits out, seeded weights."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_classifier")


@pytest.fixture(scope="session")
def tiny_classifier_h5(tmp_path_factory):
    """Path of the tiny Keras 3 classifier saved as .h5 (session-wide; do not modify it)."""
    path = tmp_path_factory.mktemp("tiny_model") / "tiny.h5"
    build_tiny_classifier().save(path)
    return path


@pytest.fixture(scope="session")
def tf_keras_preprocess_h5(tmp_path_factory):
    """A Keras-2 (tf_keras) .h5 with ``xception.preprocess_input`` inside its graph (TFOpLambda
    layers), the shape of most course models: Keras 3 cannot read it, lamb falls back to tf_keras.
    32x32 RGB in (raw [0, 255] pixels), 4-class logits out."""
    import tensorflow as tf
    import tf_keras

    tf.random.set_seed(0)
    inputs = tf_keras.Input((32, 32, 3), name="image")
    x = tf_keras.applications.xception.preprocess_input(inputs)
    x = tf_keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf_keras.layers.Dense(4, name="logits")(x)
    path = tmp_path_factory.mktemp("tf_keras_model") / "course.h5"
    tf_keras.Model(inputs, outputs, name="course_model").save(path)
    return path


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory):
    """A folder of 12 small seeded RGB PNG/JPEG images of varied sizes (calibration, verify, invoke)."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("sample_images")
    rng = np.random.default_rng(0)
    for i in range(12):
        h, w = (32, 32) if i % 3 == 0 else (40 + 4 * i, 48 + 2 * i)
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / (f"img_{i:02d}.png" if i % 2 else f"img_{i:02d}.jpg"))
    return folder


@pytest.fixture(scope="session")
def converted_tiny(tiny_classifier_h5, tmp_path_factory):
    """``lamb.convert.convert_model`` on the tiny classifier: float32, preprocess "xception",
    labels ``TINY_LABELS``. Returns the ConversionResult; its files live in a session temp dir."""
    from lamb.convert import convert_model

    out = tmp_path_factory.mktemp("converted_tiny") / "tiny.tflite"
    return convert_model(tiny_classifier_h5, out, preprocess="xception", labels=list(TINY_LABELS))
