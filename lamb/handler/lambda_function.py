"""The Lambda handler that ships inside every lamb artifact.

It imports only what ships with it: the TFLite runtime library (``ai_edge_litert`` or
``tflite_runtime``), NumPy and Pillow, plus the standard library. Never lamb, never TensorFlow.
lamb itself imports the preprocessing below from this file, so ``lamb verify`` feeds the models
exactly what the deployed function will.

Entry point: ``lambda_function.lambda_handler`` (the AWS convention). Events it answers:

- ``{"url": "https://..."}`` (the course's format) and ``{"image": "<base64>"}``: a *direct*
  invocation. The result is ``{label: score, ...}``; a bad request returns
  ``{"error": "<what is wrong>", "statusCode": 400}`` (413 for a too-large image, 502/504 when the
  url's server fails or is too slow, 500 when the function itself fails) instead of raising, so a
  caller always gets JSON and the container stays up. A model with several outputs returns
  ``{output name: {label: score}}``.
- API Gateway REST (v1) and HTTP API (v2) proxy events and Lambda Function URL events: the body
  is that same JSON, or the image bytes themselves (binary body, ``isBase64Encoded``); a GET may
  pass ``?url=...``. The answer is ``{"statusCode", "headers", "body"}`` with a JSON body, errors
  included.

The deployer tunes it with environment variables (all optional):

- ``LAMB_ALLOW_PRIVATE_URLS=1``: let ``url`` reach loopback/private/link-local addresses (off by
  default: see ``_check_address``).
- ``LAMB_FETCH_TIMEOUT_S`` (15 s): one wall-clock deadline for fetching a url (DNS, connect, TLS,
  headers, body, every redirect), never longer than the function's remaining time minus
  ``_DEADLINE_MARGIN_S``; 504 when it passes.
- ``LAMB_MAX_DOWNLOAD_BYTES`` (16 MiB): the most a url may send.
- ``LAMB_MAX_IMAGE_PIXELS``: the pixel budget, checked from the image's header before decoding
  (413). Default: see ``pixel_budget``, derived from the memory setting.
- ``LAMB_NUM_THREADS``: the interpreter's thread count (default: see ``_default_num_threads``).
- ``LAMB_LOG_TIMING=1``: log ``{"lamb_timing": {input_ms, decode_ms, preprocess_ms, inference_ms,
  inference_cpu_ms}}`` per request.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import json
import math
import os
import re
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import warnings

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


class ImageError(ValueError):
    """Bytes that cannot become the model's input; ``status`` is what the handler answers."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def image_to_pixels(image, size):
    """A PIL image -> an RGB float32 array of shape (height, width, 3), values in [0, 255].

    ``size`` is (height, width). Resizing is nearest-neighbour, as keras.utils.load_img does by
    default, so a model trained from load_img/ImageDataGenerator sees the pixels it was trained on.
    It resizes before converting to RGB: nearest-neighbour picks the same source pixels in every
    mode and the conversion is per pixel, so the pixels are the same, but a large image is never
    held twice at full size (see ``IMAGE_BYTES_PER_PIXEL``).
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


# Decoding holds the whole image at full size before it is resized to the model's input. Pillow
# keeps RGB, RGBA, CMYK, I and F images at 4 bytes a pixel, and a progressive JPEG also holds all
# its DCT coefficients while it decodes. Measured peak RSS added per pixel: 4.0 for a 50-megapixel
# RGBA PNG or baseline JPEG, 7.1 for a progressive JPEG (Pillow 13).
IMAGE_BYTES_PER_PIXEL = 8
# The share of the memory setting an image may take; the rest is the runtime, the model and its
# tensor arena. At 128 MB that is 32 MiB: 4.19 megapixels (2048 x 2048).
IMAGE_MEMORY_SHARE = 0.25
_UNMETERED_MAX_PIXELS = 50_000_000  # no memory setting to derive a budget from (not on Lambda)


def pixel_budget(memory_mb: int, explicit: int = 0) -> int:
    """The most pixels an image may have: ``explicit`` if given (``LAMB_MAX_IMAGE_PIXELS``),
    otherwise what ``IMAGE_MEMORY_SHARE`` of the memory setting holds at ``IMAGE_BYTES_PER_PIXEL``.
    Never above Pillow's own decompression-bomb limit (89.5 megapixels), which refuses first."""
    from PIL import Image

    if explicit > 0:
        budget = explicit
    elif memory_mb > 0:
        budget = int(memory_mb * 1024 * 1024 * IMAGE_MEMORY_SHARE) // IMAGE_BYTES_PER_PIXEL
    else:
        budget = _UNMETERED_MAX_PIXELS
    return min(budget, Image.MAX_IMAGE_PIXELS or budget)


def max_image_pixels() -> int:
    """This function's pixel budget, from its environment (see ``pixel_budget``)."""
    return pixel_budget(_env_int("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0), _env_int("LAMB_MAX_IMAGE_PIXELS", 0))


def _budget_hint(budget: int) -> str:
    from PIL import Image

    if budget == Image.MAX_IMAGE_PIXELS:
        return "Pillow's decompression-bomb limit"
    if _env_int("LAMB_MAX_IMAGE_PIXELS", 0) > 0:
        return "LAMB_MAX_IMAGE_PIXELS"
    memory = _env_int("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0)
    if memory <= 0:
        return "the default; set LAMB_MAX_IMAGE_PIXELS to change it"
    return f"a quarter of the function's {memory} MB; give it more memory or set LAMB_MAX_IMAGE_PIXELS"


def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} megapixels" if n >= 100_000 else f"{n:,} pixels"


# What Pillow's decoders raise on hostile bytes: a broken file is not always an OSError (the DDS
# plugin raises NotImplementedError for a pixel format it does not know; found by the fuzz test).
_DECODE_ERRORS = (
    OSError, SyntaxError, EOFError, ValueError, IndexError, KeyError, TypeError, ZeroDivisionError, OverflowError,
    NotImplementedError,
)


def decode_image(data: bytes, max_pixels: int | None = None):
    """Bytes -> a fully loaded PIL image; raises ImageError (a ValueError) for anything that is not
    an image, or is over the pixel budget (``max_image_pixels()`` unless ``max_pixels`` is given).

    The size comes from the image's header and is checked before a pixel is decoded: a few hundred
    KB of PNG can inflate to gigabytes. Pillow only *warns* between its MAX_IMAGE_PIXELS and twice
    that, so the warning is turned into an error here too.
    """
    from PIL import Image

    budget = max_image_pixels() if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > budget:
                raise ImageError(
                    f"the image is {width}x{height}, {_pixels(width * height)}, over the pixel budget of "
                    f"{_pixels(budget)} ({_budget_hint(budget)})",
                    413,
                )
            if width * height == 0:
                raise ImageError("the image has no pixels")
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"refused a possible decompression bomb ({exc})", 413) from None
    except _DECODE_ERRORS as exc:
        raise ImageError(f"not a decodable image ({exc.__class__.__name__})") from None
    return image


# -- limits and settings ------------------------------------------------------------------------

# A synchronous Lambda invocation's request payload is capped at 6 MB; anything larger never
# reaches a real function, so refusing it here keeps local runs honest.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
_MAX_REDIRECTS = 3
_MAX_DOWNLOAD_BYTES = 16 * 1024 * 1024
_FETCH_TIMEOUT_S = 15.0
# Left over when the function's own timeout cuts the fetch deadline short: time to decode, run the
# model and answer a JSON 504 instead of being killed with a Lambda timeout.
_DEADLINE_MARGIN_S = 1.0
# lamb.layout.MANIFEST_FILE and MODEL_FILE: the handler cannot import lamb (tests/test_layout.py).
_MANIFEST = "lamb.json"
_MODEL = "model.tflite"
_TASK_ROOT = os.path.dirname(os.path.abspath(__file__))
# Lambda gives a function one full vCPU per 1,769 MB of memory, up to 6 vCPUs at 10,240 MB:
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
_MB_PER_VCPU = 1769
_MAX_LAMBDA_VCPUS = 6


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _default_num_threads() -> int:
    """One interpreter thread per vCPU the function actually gets.

    Lambda's CPU share scales with the memory setting, but ``os.cpu_count()`` inside Lambda reports
    the host's cores regardless, so a default of "all cores" would oversubscribe a 1,024 MB
    function (0.58 vCPU) and make every inference stall on the CPU quota. ``LAMB_NUM_THREADS``
    overrides the rule.
    """
    explicit = _env_int("LAMB_NUM_THREADS", 0)
    if explicit > 0:
        return explicit
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    memory = _env_int("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0)
    if memory > 0:
        cpus = min(cpus, _MAX_LAMBDA_VCPUS, max(1, math.ceil(memory / _MB_PER_VCPU)))
    return max(1, cpus)


# -- errors -------------------------------------------------------------------------------------


class RequestError(Exception):
    """A request this function cannot answer; becomes a JSON error with ``status``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _clip(text, limit: int = 120, quote: bool = True) -> str:
    """A client-given string for an error message (``repr`` when ``quote``), cut short: the
    answer must stay far below Lambda's 6 MB response limit whatever the client sent."""
    shown = repr(text) if quote else str(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# -- the model (one per container) ----------------------------------------------------------------


def _load_interpreter_class():
    # ai-edge-litert is the maintained runtime; tflite-runtime is what the python3.10/3.11
    # (glibc 2.26) targets can ship. The artifact holds exactly one of them.
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    return Interpreter


def _quant(detail):
    params = detail.get("quantization_parameters") or {}
    scales = params.get("scales")
    zeros = params.get("zero_points")
    if scales is not None and zeros is not None and len(scales) == 1 and float(scales[0]) != 0.0:
        return float(scales[0]), int(zeros[0])
    scale, zero = detail.get("quantization", (0.0, 0))
    return (float(scale), int(zero)) if scale else (None, None)


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


class Model:
    """The interpreter plus what the manifest says about feeding it and naming its outputs."""

    def __init__(self, task_root: str = _TASK_ROOT):
        with open(os.path.join(task_root, _MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
        self.preprocess_mode = manifest.get("preprocess") or "none"
        if self.preprocess_mode not in PREPROCESSORS:
            raise ValueError(f"{_MANIFEST} names an unknown preprocessing mode {self.preprocess_mode!r}")
        self.labels = manifest.get("labels")
        tflite = manifest.get("tflite") or _MODEL
        tflite = os.path.join(task_root, os.path.basename(tflite))  # the artifact keeps it at the root
        self.num_threads = _default_num_threads()
        self.interpreter = _load_interpreter_class()(model_path=tflite, num_threads=self.num_threads)
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"the model has {len(inputs)} inputs; this handler feeds exactly one image")
        shape = list(inputs[0].get("shape_signature", inputs[0]["shape"]))
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"the model's input has shape {shape}; this handler feeds (batch, height, width, 3) images")
        self.input_index = inputs[0]["index"]
        self.input_dtype = np.dtype(inputs[0]["dtype"])
        self.input_quant = _quant(inputs[0])
        if -1 in shape[1:3]:
            spec = (manifest.get("inputs") or [{}])[0].get("shape") or shape
            shape[1:3] = spec[1:3]
        self.size = None if -1 in shape[1:3] else (int(shape[1]), int(shape[2]))  # None: the image's own size
        batch_of_one = [1, *(self.size or inputs[0]["shape"][1:3]), 3]
        if list(inputs[0]["shape"]) != batch_of_one:
            self._resize(batch_of_one)
        else:
            self.interpreter.allocate_tensors()
        self.outputs = self._output_tensors([o.get("name") for o in manifest.get("outputs") or []])

    def _output_tensors(self, names):
        """(tensor index, name, quantization) per output, in the manifest's order.

        The interpreter's output order is not the model's; the signature maps the names the
        manifest (and the Keras model) uses to tensor indices.
        """
        details = {}
        signatures = self.interpreter.get_signature_list()
        if signatures:
            runner = self.interpreter.get_signature_runner(next(iter(signatures)))
            details = runner.get_output_details()
        if details and set(names) == set(details):
            return [(details[n]["index"], n, _quant(details[n])) for n in names]
        if details:
            return [(d["index"], n, _quant(d)) for n, d in sorted(details.items())]
        return [(d["index"], d["name"], _quant(d)) for d in self.interpreter.get_output_details()]

    def _resize(self, shape):
        self.interpreter.resize_tensor_input(self.input_index, shape)
        self.interpreter.allocate_tensors()

    def prepare(self, image):
        """A PIL image -> the input tensor (batch of one), quantized if the model takes integers."""
        size = self.size or (image.size[1], image.size[0])
        x = preprocess(image_to_pixels(image, size), self.preprocess_mode)[None]
        if self.input_dtype.kind in "iu":
            scale, zero = self.input_quant
            if scale is None:
                raise ValueError("the model takes integer input but has no quantization parameters")
            x = quantize(x, scale, zero, self.input_dtype)
        elif x.dtype != self.input_dtype:
            x = x.astype(self.input_dtype)
        return x

    def run(self, x):
        """The input tensor -> one float32 vector per output (dequantized)."""
        if self.size is None and tuple(self.interpreter.get_input_details()[0]["shape"]) != x.shape:
            self._resize(list(x.shape))
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        results = []
        for index, name, (scale, zero) in self.outputs:
            y = self.interpreter.get_tensor(index)
            if scale is not None and y.dtype.kind in "iu":
                y = dequantize(y, scale, zero)
            results.append((name, np.asarray(y, dtype=np.float32).reshape(-1)))
        return results

    def label(self, scores):
        labels = self.labels if self.labels and len(self.labels) == len(scores) else None
        return {(labels[i] if labels else str(i)): float(s) for i, s in enumerate(scores)}

    def predict(self, image, timing=None):
        t0 = time.perf_counter()
        x = self.prepare(image)
        t1, cpu = time.perf_counter(), time.process_time()
        results = self.run(x)
        if timing is not None:
            timing["preprocess_ms"] = (t1 - t0) * 1000.0
            timing["inference_ms"] = (time.perf_counter() - t1) * 1000.0
            # CPU time well below wall time means the function is CPU-starved: on Lambda, too
            # little memory (the CPU share follows it).
            timing["inference_cpu_ms"] = (time.process_time() - cpu) * 1000.0
        if len(results) == 1:
            return self.label(results[0][1])
        return {name: self.label(scores) for name, scores in results}


_model = None
_model_error = None


def get_model() -> Model:
    """The container's one Model, created on first use and kept for every later request."""
    global _model, _model_error
    if _model is None:
        if _model_error is not None:  # a broken artifact stays broken; don't re-pay the load per request
            raise _model_error
        try:
            _model = Model()
        except Exception as exc:  # noqa: BLE001 - remembered and answered as a 500 on every request, logged once
            _model_error = RuntimeError(f"the model could not be loaded: {exc}")
            traceback.print_exc()
            raise _model_error from None
    return _model


# -- fetching a url, safely ----------------------------------------------------------------------


def _allow_private() -> bool:
    return os.environ.get("LAMB_ALLOW_PRIVATE_URLS", "").strip().lower() in ("1", "true", "yes")


# IPv6 prefixes that carry an IPv4 address, and where it sits: RFC 6052 section 2.2 puts it right
# after a prefix of 32 to 96 bits, skipping bits 64-71. Inside a VPC with DNS64/NAT64, or on a host
# that still routes the older forms, these reach the IPv4 address, metadata service included.
_EMBEDDED_IPV4 = [
    (ipaddress.ip_network("::/96"), (96,)),  # IPv4-compatible, deprecated (RFC 4291 2.5.5.1)
    (ipaddress.ip_network("::ffff:0:0/96"), (96,)),  # IPv4-mapped (RFC 4291 2.5.5.2)
    (ipaddress.ip_network("::ffff:0:0:0/96"), (96,)),  # IPv4-translated (RFC 2765 2.1)
    # NAT64 well-known prefix (RFC 6052 2.1), the one Route 53 Resolver's DNS64 synthesizes:
    # https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-nat64-dns64.html
    (ipaddress.ip_network("64:ff9b::/96"), (96,)),
    # NAT64 local-use prefix (RFC 8215): the operator picks the prefix length, so every place the
    # address can sit is checked.
    (ipaddress.ip_network("64:ff9b:1::/48"), (48, 56, 64, 96)),
]


def _rfc6052_ipv4(addr: ipaddress.IPv6Address, prefix_len: int) -> ipaddress.IPv4Address:
    packed = addr.packed
    if prefix_len == 96:
        return ipaddress.IPv4Address(packed[12:])
    without_u = packed[:8] + packed[9:]  # bits 64-71 (the "u" octet) never carry address bits
    return ipaddress.IPv4Address(without_u[prefix_len // 8 : prefix_len // 8 + 4])


def embedded_ipv4(addr) -> list:
    """The IPv4 addresses an IPv6 address carries (none for a plain IPv6 or an IPv4 address)."""
    if addr.version != 6:
        return []
    found = [_rfc6052_ipv4(addr, n) for net, lengths in _EMBEDDED_IPV4 if addr in net for n in lengths]
    if addr.sixtofour is not None:  # 6to4, 2002::/16 (RFC 3056)
        found.append(addr.sixtofour)
    if addr.teredo is not None:  # Teredo, 2001::/32 (RFC 4380): (server, client)
        found.extend(addr.teredo)
    return found


def _check_address(ip: str, host: str) -> None:
    """Refuse anything that is not a public unicast address.

    A function that fetches user-given URLs must not become a proxy into its own network: the
    metadata service (169.254.169.254, fd00:ec2::254), the Lambda runtime API on 127.0.0.1:9001,
    VPC-private hosts. ``is_global`` excludes loopback, private, link-local, CGNAT (100.64/10),
    reserved and documentation ranges. An IPv6 address that carries an IPv4 one (``embedded_ipv4``)
    is judged by the IPv4 address(es) it carries, so it cannot smuggle a private one.
    """
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    carried = embedded_ipv4(addr)
    refused = [a for a in carried or [addr] if not a.is_global or a.is_multicast]
    if refused:
        which = f" (which carries {', '.join(sorted({str(a) for a in refused}))})" if carried else ""
        raise RequestError(
            f"refusing to fetch {_clip(host)}: it resolves to {ip}{which}, a non-public address "
            "(set LAMB_ALLOW_PRIVATE_URLS=1 on the function to allow it)"
        )


class _Deadline:
    """One wall-clock deadline for a whole fetch; ``left()`` raises TimeoutError once it passed."""

    def __init__(self, seconds: float, why: str):
        self.seconds, self.why = seconds, why
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left


def fetch_deadline(context=None) -> _Deadline:
    """``LAMB_FETCH_TIMEOUT_S`` (15 s), cut to the function's remaining time minus a margin."""
    seconds = _env_float("LAMB_FETCH_TIMEOUT_S", _FETCH_TIMEOUT_S)
    why = f"the {seconds:g} s fetch deadline (LAMB_FETCH_TIMEOUT_S)"
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining_ms):
        left = remaining_ms() / 1000.0 - _DEADLINE_MARGIN_S
        if left < seconds:
            seconds, why = left, f"the function's remaining time ({left + _DEADLINE_MARGIN_S:.1f} s, less {_DEADLINE_MARGIN_S:g} s to answer)"
    return _Deadline(seconds, why)


def _resolve(host: str, port: int, deadline: _Deadline) -> str:
    """The address to connect to: resolved once, checked, then used directly (no second lookup
    that DNS rebinding could answer differently).

    ``getaddrinfo`` has no timeout, and a hostile name server can take its time answering, so the
    lookup runs in a thread the deadline waits for.
    """
    answer: dict = {}

    def lookup():
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError) as exc:
            answer["error"] = exc

    thread = threading.Thread(target=lookup, name="lamb-resolve", daemon=True)
    thread.start()
    thread.join(deadline.left())
    if thread.is_alive():
        raise TimeoutError("name resolution")
    if "error" in answer:
        raise RequestError(f"cannot resolve the url's host {_clip(host)} ({answer['error']})")
    addresses = [info[4][0] for info in answer["infos"]]
    if not addresses:
        raise RequestError(f"cannot resolve the url's host {_clip(host)}")
    if not _allow_private():
        for ip in addresses:  # every answer, so a mixed public/private record cannot slip through
            _check_address(ip, host)
    return addresses[0]


class _DeadlineSocket:
    """A connected socket that gives every send and receive what is left of one deadline as its
    timeout.

    http.client reads the status line and headers a line at a time and the body in chunks, each
    a recv that restarts a plain socket timeout: a server trickling a byte every half second
    would never time out. ``makefile`` and ``close`` keep the socket open until both the
    connection and the response are done with it, as ``socket.socket`` does.
    """

    def __init__(self, sock, deadline: _Deadline):
        self._sock, self._deadline = sock, deadline
        self._io_refs, self._closed = 0, False

    def recv_into(self, buffer, nbytes=0, flags=0):
        self._sock.settimeout(self._deadline.left())
        return self._sock.recv_into(buffer, nbytes, flags)

    def recv(self, bufsize, flags=0):
        self._sock.settimeout(self._deadline.left())
        return self._sock.recv(bufsize, flags)

    def sendall(self, data, flags=0):
        self._sock.settimeout(self._deadline.left())
        return self._sock.sendall(data, flags)

    def makefile(self, mode="rb", buffering=-1, **_kwargs):
        self._io_refs += 1
        return io.BufferedReader(socket.SocketIO(self, "rb"))  # type: ignore[arg-type]  # SocketIO needs only recv_into and _decref_socketios

    def _decref_socketios(self):  # SocketIO.close() calls this
        self._io_refs -= 1
        if self._closed and self._io_refs <= 0:
            self._sock.close()

    def close(self):
        self._closed = True
        if self._io_refs <= 0:
            self._sock.close()

    def __getattr__(self, name):
        return getattr(self._sock, name)


_connections = None


def _connection_classes():
    """(HTTP, HTTPS) connection classes that connect to an address resolved and checked
    beforehand, while the Host header and the TLS certificate check use the name, and that keep
    to the fetch's deadline from connect to the last body byte.

    Built on first use: http.client and ssl cost ~0.1 s of import that a function fed base64
    images would otherwise pay in every cold start.
    """
    global _connections
    if _connections is not None:
        return _connections
    import http.client
    import ssl

    class PinnedHTTPConnection(http.client.HTTPConnection):
        def __init__(self, host, port, ip, deadline):
            super().__init__(host, port)
            self._ip, self._deadline = ip, deadline

        def _open(self):
            return socket.create_connection((self._ip, self.port), self._deadline.left())

        def connect(self):
            self.sock = _DeadlineSocket(self._open(), self._deadline)

    class PinnedHTTPSConnection(PinnedHTTPConnection):
        default_port = 443

        def connect(self):
            sock = self._open()
            sock.settimeout(self._deadline.left())  # the TLS handshake runs under one timeout of its own
            tls = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            self.sock = _DeadlineSocket(tls, self._deadline)

    _connections = (PinnedHTTPConnection, PinnedHTTPSConnection)
    return _connections


# http.client refuses these in a request line, and a browser percent-encodes them: a url holding
# one is a mistake (or an attempt at header injection), said so rather than "fixed".
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_KEEP_IN_TARGET = "!#$%&'()*+,/:;=?@[]~"  # everything printable stays; non-ASCII is percent-encoded


def _parse_url(url: str, what: str):
    """``url`` -> (scheme, ASCII host, port, request target); a RequestError naming the problem."""
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(f"{what} {_clip(url)} is not valid Unicode text (it holds a lone surrogate)") from None
    bad = _URL_FORBIDDEN.search(url)
    if bad:
        name = "a space" if bad.group() == " " else f"the control character {bad.group()!r}"
        raise RequestError(f"{what} {_clip(url)} contains {name} at position {bad.start()}; percent-encode it")
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # "[::1", "[evil.com]", a host NFKC would change, a bad port
        raise RequestError(f"{what} {_clip(url)} is malformed: {_clip(exc, 200, quote=False)}") from None
    if parts.scheme not in ("http", "https"):
        raise RequestError(f"only http and https urls can be fetched, not {_clip(parts.scheme or 'a relative url')}")
    if not host:
        raise RequestError(f"{what} {_clip(url)} has no host")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:  # an internationalised name: the DNS and the Host header need its ASCII form
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise RequestError(f"the host {_clip(host)} in {what} {_clip(url)} is not a valid domain name ({exc})") from None
    target = urllib.parse.quote(parts.path or "/", safe=_KEEP_IN_TARGET)
    if parts.query:
        target += "?" + urllib.parse.quote(parts.query, safe=_KEEP_IN_TARGET)
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), target


def fetch_url(url: str, deadline: _Deadline | None = None) -> bytes:
    """Download ``url`` within the limits above; every redirect hop is checked like the first URL."""
    import http.client
    import ssl

    deadline = deadline or fetch_deadline()
    max_bytes = _env_int("LAMB_MAX_DOWNLOAD_BYTES", _MAX_DOWNLOAD_BYTES)
    what = "the url"
    for _ in range(_MAX_REDIRECTS + 1):
        scheme, host, port, target = _parse_url(url, what)
        conn = None
        try:
            ip = _resolve(host, port, deadline)
            http_cls, https_cls = _connection_classes()
            conn = (https_cls if scheme == "https" else http_cls)(host, port, ip, deadline)
            conn.request("GET", target, headers={"User-Agent": "lamb-lambda/1", "Accept": "image/*", "Accept-Encoding": "identity"})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise RequestError(f"the url answered HTTP {response.status} without a Location")
                what = f"the redirect from {_clip(host)} to"
                try:
                    url = urllib.parse.urljoin(url, location)
                except ValueError as exc:
                    raise RequestError(f"{what} {_clip(location)} is malformed: {_clip(exc, quote=False)}") from None
                continue
            if response.status != 200:
                raise RequestError(f"the url answered HTTP {response.status} {_clip(response.reason, quote=False)}")
            if response.length is not None and response.length > max_bytes:  # http.client's parsed Content-Length
                raise RequestError(f"the image at the url is {response.length} bytes, more than the {max_bytes} allowed", 413)
            chunks, total = [], 0
            while chunk := response.read(64 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise RequestError(f"the image at the url is more than the {max_bytes} bytes allowed", 413)
                chunks.append(chunk)
            return b"".join(chunks)
        except TimeoutError:  # socket.timeout is TimeoutError too (Python 3.10+)
            raise RequestError(f"fetching the url from {_clip(host)} did not finish within {deadline.why}", 504) from None
        except ssl.SSLError as exc:
            raise RequestError(f"TLS error fetching the url from {_clip(host)}: {exc.reason or exc}", 502) from None
        except (OSError, http.client.HTTPException) as exc:
            raise RequestError(f"could not fetch the url from {_clip(host)} ({exc.__class__.__name__}: {_clip(exc, quote=False)})", 502) from None
        finally:
            if conn is not None:
                conn.close()
    raise RequestError(f"the url redirected more than {_MAX_REDIRECTS} times")


# -- events --------------------------------------------------------------------------------------


def _decode_base64(text) -> bytes:
    if not isinstance(text, str):
        raise RequestError('"image" must be a base64 string')
    if len(text) > MAX_PAYLOAD_BYTES:
        raise RequestError(f"the image is larger than Lambda's {MAX_PAYLOAD_BYTES // (1024 * 1024)} MB payload limit", 413)
    if text.startswith("data:") and "," in text:  # a data URL straight from a browser
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError('"image" is not valid base64') from None


def _image_bytes(payload, context=None) -> bytes:
    """A direct payload ``{"url": ...}`` or ``{"image": ...}`` -> the image's bytes."""
    if not isinstance(payload, dict):
        raise RequestError('expected a JSON object with "url" or "image"')
    if "url" in payload:
        url = payload["url"]
        if not isinstance(url, str) or not url:
            raise RequestError('"url" must be a non-empty string')
        return fetch_url(url, fetch_deadline(context))
    if "image" in payload:
        return _decode_base64(payload["image"])
    raise RequestError('expected a JSON object with "url" or "image"')


def _predict(data: bytes, timing=None):
    if not data:
        raise RequestError("the image is empty")
    t0 = time.perf_counter()
    try:
        image = decode_image(data)
        if timing is not None:
            timing["decode_ms"] = (time.perf_counter() - t0) * 1000.0
        return get_model().predict(image, timing)
    except ImageError as exc:
        raise RequestError(str(exc), exc.status) from None


def _is_proxy_event(event) -> bool:
    # REST (v1) has httpMethod; HTTP API (v2) and Function URLs have version "2.0" + requestContext.http.
    return isinstance(event, dict) and ("requestContext" in event or "httpMethod" in event or "routeKey" in event)


def _string_map(event, field: str) -> dict:
    """``event[field]`` as API Gateway sends it: absent, null, or an object of strings."""
    value = event.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise RequestError(f'"{field}" must be an object whose values are strings')
    return value


def _header(event, name: str) -> str:
    for key, value in _string_map(event, "headers").items():
        if key.lower() == name:
            return value
    return ""


def _proxy_image_bytes(event, context=None) -> bytes:
    body = event.get("body")
    encoded = event.get("isBase64Encoded")
    if encoded is not None and not isinstance(encoded, bool):
        raise RequestError('"isBase64Encoded" must be true or false')
    content_type = _header(event, "content-type").split(";")[0].strip().lower()
    if body is None or body == "":
        params = _string_map(event, "queryStringParameters")
        if params.get("url"):
            return _image_bytes({"url": params["url"]}, context)
        raise RequestError('send a JSON body with "url" or "image", the image bytes, or ?url=')
    if not isinstance(body, str):
        raise RequestError("the request body must be a string")
    if len(body) > MAX_PAYLOAD_BYTES:
        raise RequestError(f"the request is larger than Lambda's {MAX_PAYLOAD_BYTES // (1024 * 1024)} MB payload limit", 413)
    if encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("the body is marked base64 but is not valid base64") from None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError("the body is not valid Unicode text (it holds a lone surrogate)") from None
    if content_type.endswith("json") or raw.lstrip()[:1] == b"{":
        try:
            payload = json.loads(raw)
        except RecursionError:  # a 2 KB body of "[[[[..." is enough
            raise RequestError("the body's JSON is nested too deeply") from None
        except ValueError:  # not JSON, not UTF-8/16/32, or an integer of more than 4,300 digits
            raise RequestError("the body is not valid JSON") from None
        return _image_bytes(payload, context)
    return raw  # the image itself (API Gateway binary media type, Function URL binary body)


def _error(message: str, status: int):
    return {"error": message, "statusCode": status}


def lambda_handler(event, context):
    proxy = _is_proxy_event(event)
    # LAMB_LOG_TIMING=1 logs one JSON line per request (CloudWatch Logs Insights can chart it).
    timing: dict[str, float] | None = {} if os.environ.get("LAMB_LOG_TIMING") == "1" else None
    try:
        t0 = time.perf_counter()
        data = _proxy_image_bytes(event, context) if proxy else _image_bytes(event, context)
        if timing is not None:
            timing["input_ms"] = (time.perf_counter() - t0) * 1000.0  # url fetch or base64 decode
        result, status = _predict(data, timing), 200
    except RequestError as exc:
        result, status = _error(str(exc), exc.status), exc.status
    except MemoryError:
        result, status = _error("out of memory while handling the image; give the function more memory", 500), 500
    except Exception as exc:  # noqa: BLE001 - the Lambda boundary: log it for CloudWatch, answer JSON, keep the container
        traceback.print_exc()
        result, status = _error(f"internal error: {exc.__class__.__name__}: {exc}", 500), 500
    if timing is not None:
        print(json.dumps({"lamb_timing": timing, "status": status}))
    if not proxy:
        return result
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(result),
        "isBase64Encoded": False,
    }


# Inside Lambda (or lamb's local runner) the model loads during the init phase, so the first
# request pays only for inference and Lambda's "Init Duration" shows the load cost (provisioned
# concurrency pre-pays it). A load failure is remembered and answered as a 500 by every request
# instead of failing the init with an opaque Runtime.ImportModuleError. Imported anywhere else
# (lamb verify imports the preprocessing above), nothing loads.
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.path.exists(os.path.join(_TASK_ROOT, _MANIFEST)):
    try:
        get_model()
    except RuntimeError:
        print("lamb: the model failed to load; every request will answer 500", file=sys.stderr)
