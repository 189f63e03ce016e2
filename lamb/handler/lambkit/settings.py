"""The function's limits and its ``LAMB_*`` settings, read from the environment and checked.

Every setting has a default that is safe on Lambda; a value that is not a valid one (``nan``,
``inf``, a negative number, text where a number belongs) is refused with one log line naming the
variable, and the default is used instead: a typo in a console field must not turn every request
into a 500, nor lift a limit.

- ``LAMB_ALLOW_PRIVATE_URLS`` (off): let ``url`` reach loopback/private/link-local addresses.
- ``LAMB_FETCH_TIMEOUT_S`` (15 s): one wall-clock deadline for fetching a url, every redirect
  included, never longer than the function's remaining time minus ``DEADLINE_MARGIN_S``.
- ``LAMB_MAX_DOWNLOAD_BYTES`` (16 MiB): the most a url may send.
- ``LAMB_MAX_IMAGE_PIXELS`` (from the memory setting, see ``decode.pixel_budget``): the most pixels
  an image may have, read from its header before decoding.
- ``LAMB_IMAGE_FORMATS`` (``DEFAULT_FORMATS``): the image formats the function opens,
  comma-separated Pillow format names, each one of ``ADMISSIBLE_FORMATS``.
- ``LAMB_NUM_THREADS`` (one per vCPU, see ``default_num_threads``): the runtime library's threads.
- ``LAMB_LOG_TIMING`` (off): log one JSON line of timings per request.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from dataclasses import dataclass

# A synchronous Lambda invocation's request payload is capped at 6 MB; anything larger never
# reaches a real function, so refusing it here keeps local runs honest.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_REDIRECTS = 3
# Left over when the function's own timeout cuts a deadline short: time to answer a JSON error
# instead of being killed with a Lambda timeout.
DEADLINE_MARGIN_S = 1.0
# Lambda gives a function one full vCPU per 1,769 MB of memory, up to 6 vCPUs at 10,240 MB:
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
MB_PER_VCPU = 1769
MAX_LAMBDA_VCPUS = 6
# Lambda's largest memory setting (10,240 MB) and longest timeout (900 s), same page as above.
_MAX_MEMORY_MB = 10240
MAX_TIMEOUT_S = 900.0

# The formats an image classifier is sent: what cameras, phones, browsers and datasets produce.
# Every other Pillow format stays closed (LAMB_IMAGE_FORMATS chooses among ADMISSIBLE_FORMATS):
# each opened format is attack surface, and ICO, ICNS and BLP decode an embedded PNG or JPEG inside
# Image.open, whatever size their own header declares, before any budget can be checked.
DEFAULT_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# Formats whose decoding cost decode.py's checks bound by the header's size (plus TIFF's strips and
# tiles and JPEG's scans, counted before decoding).
ADMISSIBLE_FORMATS = (*DEFAULT_FORMATS, "PPM", "TGA", "QOI", "PCX", "SGI")

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    allow_private_urls: bool = False
    fetch_timeout_s: float = 15.0
    max_download_bytes: int = 16 * 1024 * 1024
    max_image_pixels: int = 0  # 0: derived from the memory setting
    image_formats: tuple = ()  # (): DEFAULT_FORMATS
    num_threads: int = 0  # 0: one per vCPU
    log_timing: bool = False
    memory_mb: int = 0  # AWS_LAMBDA_FUNCTION_MEMORY_SIZE; 0 off Lambda


def _flag(raw: str):
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected 1/true/yes or 0/false/no")


def _count(limit: int):
    def parse(raw: str) -> int:
        value = int(raw.strip())  # ValueError for "1e6", "nan", "12 MB"
        if not 0 < value <= limit:
            raise ValueError(f"expected a whole number from 1 to {limit:,}")
        return value

    parse.limit = limit  # type: ignore[attr-defined]  # the docs' settings table states it
    return parse


def _seconds(raw: str) -> float:
    value = float(raw.strip())
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S):
        raise ValueError(f"expected a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}")
    return value


def _formats(raw: str) -> tuple:
    names = tuple(dict.fromkeys(n.strip().upper() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in ADMISSIBLE_FORMATS]
    if unknown or not names:
        raise ValueError(
            f"{', '.join(unknown) or 'no format'} cannot be admitted; choose from {', '.join(ADMISSIBLE_FORMATS)} "
            "(the others decode more than their header declares)"
        )
    return names


# (environment variable, Settings field, parser). One row per setting.
_FIELDS = (
    ("LAMB_ALLOW_PRIVATE_URLS", "allow_private_urls", _flag),
    ("LAMB_FETCH_TIMEOUT_S", "fetch_timeout_s", _seconds),
    ("LAMB_MAX_DOWNLOAD_BYTES", "max_download_bytes", _count(1 << 40)),
    ("LAMB_MAX_IMAGE_PIXELS", "max_image_pixels", _count(1 << 40)),
    ("LAMB_IMAGE_FORMATS", "image_formats", _formats),
    ("LAMB_NUM_THREADS", "num_threads", _count(256)),
    ("LAMB_LOG_TIMING", "log_timing", _flag),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "memory_mb", _count(_MAX_MEMORY_MB)),
)
NAMES = tuple(name for name, _, _ in _FIELDS)

_cache: dict = {}
_lock = threading.Lock()


def current() -> Settings:
    """The settings for the environment as it is now (parsed once per distinct environment, so a
    bad value is logged once, at init, when ``load_model`` first reads them)."""
    raw = tuple(os.environ.get(name) for name in NAMES)
    found = _cache.get(raw)
    if found is None:
        with _lock:
            found = _cache.get(raw) or _parse(raw)
            _cache[raw] = found
    return found


def _parse(raw: tuple) -> Settings:
    defaults = Settings()
    values = {}
    for (name, field, parse), text in zip(_FIELDS, raw):
        if text is None or (text.strip() == "" and parse is not _flag):
            continue
        try:
            values[field] = parse(text)
        except ValueError as exc:
            shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
            print(f"lamb: refusing {name}={shown}: {exc}; using the default ({_describe(getattr(defaults, field))})",
                  file=sys.stderr)
    return Settings(**values)


def _describe(default) -> str:
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default) if default else "derived from the function's configuration"


def default_num_threads(settings: Settings | None = None) -> int:
    """One runtime-library thread per vCPU the function actually gets.

    Lambda's CPU share scales with the memory setting, but ``os.cpu_count()`` inside Lambda reports
    the host's cores regardless, so a default of "all cores" would oversubscribe a 1,024 MB
    function (0.58 vCPU) and make every inference stall on the CPU quota. ``LAMB_NUM_THREADS``
    overrides the rule.
    """
    settings = settings or current()
    if settings.num_threads > 0:
        return settings.num_threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    if settings.memory_mb > 0:
        cpus = min(cpus, MAX_LAMBDA_VCPUS, max(1, math.ceil(settings.memory_mb / MB_PER_VCPU)))
    return max(1, cpus)
