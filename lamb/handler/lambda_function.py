"""The Lambda handler that ships inside every lamb artifact.

It imports only what ships with it: the TFLite runtime library (``ai_edge_litert`` or
``tflite_runtime``), NumPy and Pillow, plus the standard library. Never lamb, never TensorFlow.
lamb itself imports the preprocessing below from this file, so ``lamb verify`` feeds the models
exactly what the deployed function will.
"""

from __future__ import annotations

import io

import numpy as np

# -- preprocessing ------------------------------------------------------------------------------
# Each mode maps an RGB float32 array with values in [0, 255] (shape (..., H, W, 3)) to what the
# model was trained on. They follow keras.applications' preprocess_input.

_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _xception(x):  # "tf" mode: Xception, InceptionV3, MobileNet(V2), ...
    return x / 127.5 - 1.0


def _caffe(x):  # VGG16/19, ResNet50 (v1): RGB -> BGR, minus the ImageNet mean, no scaling
    return x[..., ::-1] - _CAFFE_MEAN_BGR


def _torch(x):  # DenseNet, ...: scale to [0, 1], then standardise per channel
    return (x / 255.0 - _TORCH_MEAN) / _TORCH_STD


def _scale(x):
    return x / 255.0


def _none(x):
    return x


PREPROCESSORS = {"xception": _xception, "caffe": _caffe, "torch": _torch, "scale": _scale, "none": _none}


def preprocess(pixels, mode: str):
    """RGB pixels in [0, 255] -> the model's input, as float32."""
    try:
        fn = PREPROCESSORS[mode]
    except KeyError:
        raise ValueError(f"unknown preprocessing mode {mode!r}; expected one of {sorted(PREPROCESSORS)}") from None
    return np.ascontiguousarray(fn(np.asarray(pixels, dtype=np.float32)), dtype=np.float32)


def image_to_pixels(image, size):
    """A PIL image -> an RGB float32 array of shape (height, width, 3), values in [0, 255].

    ``size`` is (height, width). Resizing is nearest-neighbour, as keras.utils.load_img does by
    default, so a model trained from load_img/ImageDataGenerator sees the pixels it was trained on.
    """
    from PIL import Image

    height, width = size
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.NEAREST)
    return np.asarray(image, dtype=np.float32)


def decode_image(data: bytes):
    """Bytes -> a fully loaded PIL image; raises ValueError for anything that is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"not a decodable image ({exc.__class__.__name__})") from None
    return image
