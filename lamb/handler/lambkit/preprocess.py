"""Pixels to the model's input: resizing, the preprocessing modes, (de)quantization.

lamb imports these too (verify, calibration, compare), so what lamb checks the model with is
exactly what the deployed function feeds it.
"""

from __future__ import annotations

import numpy as np

from .errors import ImageError

# Each mode maps an RGB float32 array with values in [0, 255] (shape (..., H, W, 3)) to what the
# model was trained on. They follow keras.applications' preprocess_input.
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _xception(x):  # "tf" mode: Xception, InceptionV3, MobileNet(V2), ...
    return x / 127.5 - 1.0


def _caffe(x):  # VGG16/19, ResNet50 (v1): RGB -> BGR, minus the ImageNet mean, no scaling
    return x[..., ::-1] - _CAFFE_MEAN_BGR


def _torch(x):  # DenseNet, torchvision models: scale to [0, 1], then standardise per channel
    return (x / 255.0 - _TORCH_MEAN) / _TORCH_STD


def _scale(x):
    return x / 255.0


def _none(x):
    return x


PREPROCESSORS = {"xception": _xception, "caffe": _caffe, "torch": _torch, "scale": _scale, "none": _none}


def preprocess(pixels, mode: str):
    """RGB pixels in [0, 255] -> the model's input, as float32 (channels last)."""
    try:
        fn = PREPROCESSORS[mode]
    except KeyError:
        raise ValueError(f"unknown preprocessing mode {mode!r}; expected one of {sorted(PREPROCESSORS)}") from None
    return np.ascontiguousarray(fn(np.asarray(pixels, dtype=np.float32)), dtype=np.float32)


def image_to_pixels(image, size):
    """A PIL image -> an RGB float32 array of shape (height, width, 3), values in [0, 255].

    ``size`` is (height, width). Resizing is nearest-neighbour, as keras.utils.load_img does by
    default, so a model trained from load_img/ImageDataGenerator sees the pixels it was trained on.
    It resizes before converting to RGB: nearest-neighbour picks the same source pixels in every
    mode and the conversion is per pixel, so the pixels are the same, but a large image is never
    held twice at full size (see ``decode.IMAGE_BYTES_PER_PIXEL``).
    """
    from PIL import Image

    height, width = size
    try:
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.NEAREST)
        if image.mode != "RGB":
            image = image.convert("RGB")
    except (ValueError, OSError) as exc:  # a mode Pillow cannot resize or turn into RGB
        raise ImageError(f"cannot use a {image.mode} image ({exc}); send RGB, RGBA or grayscale") from None
    return np.asarray(image, dtype=np.float32)


def quantize(x, scale: float, zero_point: int, dtype):
    """Real values -> the integer tensor a quantized input takes: round(x / scale + zero_point).

    lamb verify's runner imports this too, so verification feeds int8 models exactly what the
    deployed function does.
    """
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(y, scale: float, zero_point: int):
    """An integer output tensor -> its real values, float32."""
    return (y.astype(np.float32) - zero_point) * np.float32(scale)
