"""The events the function answers, and the answers it gives.

- ``{"url": "https://..."}`` (the course's format) and ``{"image": "<base64>"}``: a *direct*
  invocation. The answer is the function's result; a bad request answers
  ``{"error": "<what is wrong>", "statusCode": 400}`` (413 for a too-large or too costly image,
  502/504 when the url's server fails or is too slow, 500 when the function itself fails) instead
  of raising, so a caller always gets JSON and the execution environment stays up.
- API Gateway REST (v1) and HTTP API (v2) proxy events and Lambda Function URL events: the body is
  that same JSON, or the image bytes themselves (binary body, ``isBase64Encoded``); a GET may pass
  ``?url=...``. The answer is ``{"statusCode", "headers", "body"}`` with a JSON body, errors included.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import time
import traceback

from . import settings, timing
from .decode import decode_deadline, decode_image
from .errors import ImageError, RequestError, one_line
from .fetch import fetch_deadline, fetch_url
from .settings import MAX_PAYLOAD_BYTES


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


def image_bytes(event, context=None) -> bytes:
    """The image's bytes from any event this function answers (see the module's docstring)."""
    t0 = time.perf_counter()
    data = _proxy_image_bytes(event, context) if _is_proxy_event(event) else _image_bytes(event, context)
    timing.record("input_ms", (time.perf_counter() - t0) * 1000.0)  # url fetch or base64 decode
    if not data:
        raise RequestError("the image is empty")
    return data


def read_image(event, context=None):
    """The decoded image (a PIL image) from any event this function answers, within the pixel
    budget, the admitted formats and the function's remaining time; RequestError otherwise."""
    data = image_bytes(event, context)
    t0 = time.perf_counter()
    try:
        image = decode_image(data, deadline=decode_deadline(context))
    except ImageError as exc:
        raise RequestError(str(exc), exc.status) from None
    timing.record("decode_ms", (time.perf_counter() - t0) * 1000.0)
    return image


def error(message: str, status: int) -> dict:
    return {"error": message, "statusCode": status}


def _answer(handler, event, context):
    try:
        return handler(event, context), 200
    except RequestError as exc:
        return error(str(exc), exc.status), exc.status
    except MemoryError:
        return error("out of memory while handling the image; give the function more memory", 500), 500
    except Exception as exc:  # noqa: BLE001 - the Lambda boundary: log it for CloudWatch, answer JSON, keep the environment
        traceback.print_exc()
        return error(f"internal error: {exc.__class__.__name__}: {one_line(exc)}", 500), 500


def answers_json(handler):
    """Wrap ``handler(event, context)`` so that it never raises: a RequestError becomes
    ``{"error", "statusCode"}`` and anything else a one-line 500; proxy events (API Gateway,
    Function URLs) get a proxy response with the result as its JSON body. With
    ``LAMB_LOG_TIMING=1`` it logs one JSON line of timings per request (CloudWatch Logs Insights
    can chart it)."""

    @functools.wraps(handler)
    def lambda_handler(event, context):
        token = timing.start(settings.current().log_timing)
        try:
            result, status = _answer(handler, event, context)
        finally:
            timings = timing.stop(token)
        if timings is not None:
            print(json.dumps({"lamb_timing": timings, "status": status}))
        if not _is_proxy_event(event):
            return result
        return {
            "statusCode": status,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(result),
            "isBase64Encoded": False,
        }

    return lambda_handler
