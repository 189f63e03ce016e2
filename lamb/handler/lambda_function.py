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
  caller always gets JSON and the container stays up. A model with several outputs returns ``{output name: {label: score}}``.
- API Gateway REST (v1) and HTTP API (v2) proxy events and Lambda Function URL events: the body
  is that same JSON, or the image bytes themselves (binary body, ``isBase64Encoded``); a GET may
  pass ``?url=...``. The answer is ``{"statusCode", "headers", "body"}`` with a JSON body, errors
  included.

The deployer tunes it with environment variables (all optional):

- ``LAMB_ALLOW_PRIVATE_URLS=1``: let ``url`` reach loopback/private/link-local addresses (off by
  default: see ``_check_address``).
- ``LAMB_MAX_DOWNLOAD_BYTES`` (default 16 MiB), ``LAMB_CONNECT_TIMEOUT`` (3 s),
  ``LAMB_READ_TIMEOUT`` (10 s; the whole download is capped at connect + read), ``LAMB_MAX_IMAGE_PIXELS``
  (50 megapixels).
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
import socket
import sys
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
    """Bytes -> a fully loaded PIL image; raises ValueError for anything that is not an image.

    Decompression bombs (a few KB of PNG that inflate to gigabytes) are refused before any pixel
    is decoded: Pillow only *warns* between MAX_IMAGE_PIXELS and twice that, so the warning is
    turned into an error here, and our own pixel cap applies first.
    """
    from PIL import Image, UnidentifiedImageError

    max_pixels = _env_int("LAMB_MAX_IMAGE_PIXELS", 50_000_000)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ValueError(
                    f"the image is {width}x{height} pixels, more than the {max_pixels} this function accepts"
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"refused a possible decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"not a decodable image ({exc.__class__.__name__})") from None
    return image


# -- limits and settings ------------------------------------------------------------------------

# A synchronous Lambda invocation's request payload is capped at 6 MB; anything larger never
# reaches a real function, so refusing it here keeps local runs honest.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
_MAX_REDIRECTS = 3
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
    if scales is not None and len(scales) == 1 and float(scales[0]) != 0.0:
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
        if list(inputs[0]["shape"]) != [1, *(self.size or inputs[0]["shape"][1:3]), 3]:
            self._resize([1, *(self.size or inputs[0]["shape"][1:3]), 3])
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
        except Exception as exc:  # remembered and answered as a 500 on every request, logged once
            _model_error = RuntimeError(f"the model could not be loaded: {exc}")
            traceback.print_exc()
            raise _model_error from None
    return _model


# -- fetching a url, safely ----------------------------------------------------------------------


def _allow_private() -> bool:
    return os.environ.get("LAMB_ALLOW_PRIVATE_URLS", "").strip().lower() in ("1", "true", "yes")


def _check_address(ip: str, host: str) -> None:
    """Refuse anything that is not a public unicast address.

    A function that fetches user-given URLs must not become a proxy into its own network: the
    metadata service (169.254.169.254, fd00:ec2::254), the Lambda runtime API on 127.0.0.1:9001,
    VPC-private hosts. ``is_global`` excludes loopback, private, link-local, CGNAT (100.64/10),
    reserved and documentation ranges; IPv4-mapped and 6to4/Teredo IPv6 forms are unwrapped
    first so they cannot smuggle a private IPv4 address.
    """
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if addr.version == 6:
        inner = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if inner is not None:
            addr = inner
    if not addr.is_global or addr.is_multicast:
        raise RequestError(
            f"refusing to fetch {host!r}: it resolves to {ip}, a non-public address "
            "(set LAMB_ALLOW_PRIVATE_URLS=1 on the function to allow it)"
        )


def _resolve(host: str, port: int) -> str:
    """The address to connect to: resolved once, checked, then used directly (no second lookup
    that DNS rebinding could answer differently)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RequestError(f"cannot resolve the url's host {host!r} ({exc})") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise RequestError(f"cannot resolve the url's host {host!r}")
    if not _allow_private():
        for ip in addresses:  # every answer, so a mixed public/private record cannot slip through
            _check_address(ip, host)
    return addresses[0]


_connections = None


def _connection_classes():
    """(HTTP, HTTPS) connection classes that connect to an address resolved and checked
    beforehand, while the Host header and the TLS certificate check use the name.

    Built on first use: http.client and ssl cost ~0.1 s of import that a function fed base64
    images would otherwise pay in every cold start.
    """
    global _connections
    if _connections is not None:
        return _connections
    import http.client
    import ssl

    class PinnedHTTPConnection(http.client.HTTPConnection):
        def __init__(self, host, port, ip, timeout, read_timeout):
            super().__init__(host, port, timeout=timeout)
            self._ip = ip
            self._read_timeout = read_timeout

        def connect(self):
            self.sock = socket.create_connection((self._ip, self.port), self.timeout)
            self.sock.settimeout(self._read_timeout)

    class PinnedHTTPSConnection(http.client.HTTPSConnection):
        def __init__(self, host, port, ip, timeout, read_timeout):
            super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
            self._ip = ip
            self._read_timeout = read_timeout

        def connect(self):
            sock = socket.create_connection((self._ip, self.port), self.timeout)
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
            self.sock.settimeout(self._read_timeout)

    _connections = (PinnedHTTPConnection, PinnedHTTPSConnection)
    return _connections


def fetch_url(url: str) -> bytes:
    """Download ``url`` with the limits above; every redirect hop is checked like the first URL."""
    import http.client
    import ssl

    max_bytes = _env_int("LAMB_MAX_DOWNLOAD_BYTES", 16 * 1024 * 1024)
    connect_timeout = _env_float("LAMB_CONNECT_TIMEOUT", 3.0)
    read_timeout = _env_float("LAMB_READ_TIMEOUT", 10.0)
    deadline = time.monotonic() + connect_timeout + read_timeout  # a trickling server cannot stall us
    for _ in range(_MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise RequestError(f"only http and https urls can be fetched, not {parts.scheme or 'a relative url'!r}")
        host = parts.hostname
        if not host:
            raise RequestError("the url has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise RequestError("the url has an invalid port") from None
        ip = _resolve(host, port)
        http_cls, https_cls = _connection_classes()
        cls = https_cls if parts.scheme == "https" else http_cls
        conn = cls(host, port, ip, connect_timeout, read_timeout)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            conn.request("GET", path, headers={"User-Agent": "lamb-lambda/1", "Accept": "image/*", "Accept-Encoding": "identity"})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise RequestError(f"the url answered HTTP {response.status} without a Location")
                url = urllib.parse.urljoin(url, location)
                continue
            if response.status != 200:
                raise RequestError(f"the url answered HTTP {response.status} {response.reason}")
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise RequestError(f"the image at the url is {int(length)} bytes, more than the {max_bytes} allowed", 413)
            chunks, total = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise RequestError("the url took too long to download", 504)
                chunk = response.read(64 * 1024)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise RequestError(f"the image at the url is more than the {max_bytes} bytes allowed", 413)
                chunks.append(chunk)
            return b"".join(chunks)
        except (socket.timeout, TimeoutError):
            raise RequestError(f"timed out fetching the url from {host}", 504) from None
        except ssl.SSLError as exc:
            raise RequestError(f"TLS error fetching the url from {host}: {exc.reason or exc}", 502) from None
        except (OSError, http.client.HTTPException) as exc:
            raise RequestError(f"could not fetch the url from {host} ({exc.__class__.__name__}: {exc})", 502) from None
        finally:
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


def _image_bytes(payload) -> bytes:
    """A direct payload ``{"url": ...}`` or ``{"image": ...}`` -> the image's bytes."""
    if not isinstance(payload, dict):
        raise RequestError('expected a JSON object with "url" or "image"')
    if "url" in payload:
        url = payload["url"]
        if not isinstance(url, str) or not url:
            raise RequestError('"url" must be a non-empty string')
        return fetch_url(url)
    if "image" in payload:
        return _decode_base64(payload["image"])
    raise RequestError('expected a JSON object with "url" or "image"')


def _predict(data: bytes, timing=None):
    if not data:
        raise RequestError("the image is empty")
    t0 = time.perf_counter()
    try:
        image = decode_image(data)
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    if timing is not None:
        timing["decode_ms"] = (time.perf_counter() - t0) * 1000.0
    return get_model().predict(image, timing)


def _is_proxy_event(event) -> bool:
    # REST (v1) has httpMethod; HTTP API (v2) and Function URLs have version "2.0" + requestContext.http.
    return isinstance(event, dict) and ("requestContext" in event or "httpMethod" in event or "routeKey" in event)


def _header(event, name: str) -> str:
    headers = event.get("headers") or {}
    for key, value in headers.items():
        if key.lower() == name:
            return value or ""
    return ""


def _proxy_image_bytes(event) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        params = event.get("queryStringParameters") or {}
        if params.get("url"):
            return _image_bytes({"url": params["url"]})
        raise RequestError('send a JSON body with "url" or "image", the image bytes, or ?url=')
    if not isinstance(body, str):
        raise RequestError("the request body must be a string")
    if len(body) > MAX_PAYLOAD_BYTES:
        raise RequestError(f"the request is larger than Lambda's {MAX_PAYLOAD_BYTES // (1024 * 1024)} MB payload limit", 413)
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("the body is marked base64 but is not valid base64") from None
    else:
        raw = body.encode("utf-8", "surrogateescape")
    content_type = _header(event, "content-type").split(";")[0].strip().lower()
    if content_type.endswith("json") or raw.lstrip()[:1] == b"{":
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestError("the body is not valid JSON") from None
        return _image_bytes(payload)
    return raw  # the image itself (API Gateway binary media type, Function URL binary body)


def _error(message: str, status: int):
    return {"error": message, "statusCode": status}


def lambda_handler(event, context):
    proxy = _is_proxy_event(event)
    # LAMB_LOG_TIMING=1 logs one JSON line per request (CloudWatch Logs Insights can chart it).
    timing = {} if os.environ.get("LAMB_LOG_TIMING") == "1" else None
    try:
        t0 = time.perf_counter()
        data = _proxy_image_bytes(event) if proxy else _image_bytes(event)
        if timing is not None:
            timing["input_ms"] = (time.perf_counter() - t0) * 1000.0  # url fetch or base64 decode
        result, status = _predict(data, timing), 200
    except RequestError as exc:
        result, status = _error(str(exc), exc.status), exc.status
    except MemoryError:
        result, status = _error("out of memory while handling the image; give the function more memory", 500), 500
    except Exception as exc:  # the Lambda boundary: log it for CloudWatch, answer JSON, keep the container
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
