"""lambkit: what lamb's Lambda function is made of, shipped beside ``lambda_function.py``.

It imports only what ships with it (the runtime library, NumPy, Pillow) and the standard library,
never lamb or TensorFlow. Write your own entry with these (``lamb package --handler my_function.py``):

- ``load_model()``: the artifact's model and record (``lamb.json``), loaded once; ``model.predict(image)``
  gives ``{label: score}``; ``model.prepare(image)`` and ``model.run(x)`` are its two halves.
- ``read_image(event, context)``: the decoded image from any event the function answers, with
  every limit applied; ``image_bytes(event, context)`` stops before decoding.
- ``answers_json``: the decorator that turns errors into JSON answers and proxy events into proxy
  responses.
- ``decode_image``, ``fetch_url``, ``preprocess``, ``image_to_pixels``: the steps on their own.
- ``RequestError(message, status)``: raise it to answer a client error.
"""

from .decode import decode_image, max_image_pixels, pixel_budget
from .errors import ImageError, RequestError
from .events import answers_json, image_bytes, read_image
from .fetch import fetch_url
from .model import Model, load_model
from .preprocess import PREPROCESSORS, dequantize, image_to_pixels, preprocess, quantize

__all__ = [
    "PREPROCESSORS",
    "ImageError",
    "Model",
    "RequestError",
    "answers_json",
    "decode_image",
    "dequantize",
    "fetch_url",
    "image_bytes",
    "image_to_pixels",
    "load_model",
    "max_image_pixels",
    "pixel_budget",
    "preprocess",
    "quantize",
    "read_image",
]
