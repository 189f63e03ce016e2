"""Property-based fuzzing of the shipped handler, in-process, with the tiny real model.

Invariant: whatever the event, ``lambda_handler`` returns a dict whose status is 2xx or 4xx; it
never raises and never answers 500 for bad input. Unchanged images in every mode Pillow decodes
answer 200 with the model's labels in an admitted format, 400 in any other. Hostile files of every
decoder class (declared sizes, TIFF strips, JPEG scans, frames, PNG text, PNG chunks and GIF
blocks, embedded containers), their sizes and counts drawn, answer within seconds.

The default Hypothesis profile keeps this to a few seconds (``lamb-ci``, registered in
conftest.py). Run it longer with ``LAMB_FUZZ_PROFILE=lamb-long pytest tests/test_handler_fuzz.py``
or ``pytest --hypothesis-profile=lamb-long tests/test_handler_fuzz.py``.

No example reaches the network: name resolution answers 127.0.0.1 for every host, so every url is
refused as non-public before a connection, and a connection attempt fails the run.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import warnings

import pytest
from conftest import TINY_LABELS, make_task_root
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from test_handler import load_handler

from lamb.handler.lambkit.settings import DEFAULT_FORMATS

# (mode to save, format): together they make Pillow decode into every mode its decoders produce.
SOURCES = [
    ("1", "PNG"), ("1", "BMP"), ("L", "PNG"), ("L", "JPEG"), ("L", "GIF"), ("P", "PNG"), ("P", "GIF"),
    ("RGB", "PNG"), ("RGB", "JPEG"), ("RGB", "WEBP"), ("RGB", "BMP"), ("RGB", "TIFF"), ("RGB", "ICO"),
    ("RGB", "TGA"), ("RGB", "PPM"), ("RGB", "QOI"), ("RGB", "PCX"), ("RGB", "SGI"), ("RGB", "DDS"),
    ("RGBA", "PNG"), ("RGBA", "WEBP"), ("RGBA", "TIFF"), ("CMYK", "JPEG"), ("CMYK", "TIFF"),
    ("YCbCr", "TIFF"), ("LAB", "TIFF"), ("I", "TIFF"), ("F", "TIFF"), ("LA", "PNG"), ("PA", "TIFF"),
    ("I;16", "PNG"), ("I;16B", "TIFF"), ("I;16L", "TIFF"),
]
DECODED_MODES = {"1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "I", "F", "LA", "PA", "I;16", "I;16B"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, converted_tiny):
    """The handler, with DNS answering loopback for every name and connections forbidden."""
    connects = []

    def loopback(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port if isinstance(port, int) else 80))]

    def forbidden(address, *args, **kwargs):
        connects.append(address)
        raise ConnectionRefusedError("the fuzz test never connects")

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LAMB_ALLOW_PRIVATE_URLS", raising=False)
        mp.delenv("LAMB_MAX_IMAGE_PIXELS", raising=False)
        mp.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        mp.setattr(socket, "getaddrinfo", loopback)
        mp.setattr(socket, "create_connection", forbidden)
        yield load_handler(make_task_root(tmp_path_factory.mktemp("fuzz_task"), converted_tiny))
    assert connects == []


def answer(handler, event):
    """(status, body) of whatever the handler returned; fails on anything but a 2xx/4xx dict."""
    response = handler.lambda_handler(event, None)
    assert isinstance(response, dict), response
    if "body" in response and "statusCode" in response:  # a proxy answer
        status, body = response["statusCode"], json.loads(response["body"])
    else:
        status, body = response.get("statusCode", 200), response
    assert 200 <= status < 300 or 400 <= status < 500, response
    if status == 200:
        assert list(body) == TINY_LABELS
    else:
        assert body["statusCode"] == status and isinstance(body["error"], str) and len(body["error"]) < 2000
    return status, body


# -- strategies -------------------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=40)  # lone surrogates included
scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4), max_leaves=12)

hosts = st.one_of(
    any_text,
    st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
    st.sampled_from(["example.com", "localhost", "[::1", "[evil.com]", "ex\u2100ample.com", "b\u00fccher.example", "a..b"]),
)
urls = st.one_of(
    any_text,
    st.builds(lambda scheme, host, port, path: f"{scheme}://{host}{port}/{path}",
              st.sampled_from(["http", "https", "ftp", "file", "HTTP", ""]), hosts,
              st.sampled_from(["", ":80", ":0", ":99999", ":x"]), any_text),
)


@st.composite
def images(draw):
    """(bytes, unchanged, format): an image in one of SOURCES, then maybe truncated or mutated."""
    mode, fmt = draw(st.sampled_from(SOURCES))
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    size = len(Image.new(mode, (width, height)).tobytes())
    image = Image.frombytes(mode, (width, height), draw(st.binary(min_size=size, max_size=size)))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image.save(buffer, fmt)
    data = buffer.getvalue()
    change = draw(st.sampled_from(["none", "truncate", "mutate", "splice"]))
    if change == "truncate":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif change == "mutate":
        edited = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            edited[draw(st.integers(0, len(edited) - 1))] = draw(st.integers(0, 255))
        data = bytes(edited)
    elif change == "splice":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=64)) + data[at:]
    return data, change == "none" or data == buffer.getvalue(), fmt


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


image_fields = st.one_of(images().map(lambda pair: b64(pair[0])), any_text, json_values)
direct_events = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"url": st.one_of(urls, json_values), "image": image_fields}),
)
bodies = st.one_of(
    st.none(), any_text, json_values,
    direct_events.map(json.dumps),
    images().map(lambda pair: b64(pair[0])),
    st.integers(1, 3000).map(lambda depth: "[" * depth),
)
string_maps = st.one_of(st.none(), st.dictionaries(any_text, any_text, max_size=3), json_values)
headers = st.one_of(string_maps, st.sampled_from([{"Content-Type": "application/json"}, {"content-type": "image/png"}]))
proxy_v1 = st.fixed_dictionaries({
    "httpMethod": st.one_of(st.just("POST"), json_values), "headers": headers, "body": bodies,
    "queryStringParameters": st.one_of(string_maps, urls.map(lambda u: {"url": u})),
    "isBase64Encoded": st.one_of(st.booleans(), json_values), "requestContext": json_values,
})
proxy_v2 = st.fixed_dictionaries({
    "version": st.one_of(st.just("2.0"), json_values), "routeKey": st.one_of(st.just("$default"), json_values),
    "rawPath": any_text, "headers": headers, "body": bodies,
    "queryStringParameters": st.one_of(string_maps, urls.map(lambda u: {"url": u})),
    "isBase64Encoded": st.one_of(st.booleans(), json_values),
    "requestContext": st.one_of(st.just({"http": {"method": "POST", "path": "/"}, "domainName": "x.lambda-url.us-east-1.on.aws"}), json_values),
})


# -- properties ---------------------------------------------------------------------------------------


@given(event=st.one_of(direct_events, proxy_v1, proxy_v2))
def test_any_event_answers_2xx_or_4xx(fuzzed, event):
    answer(fuzzed, event)


@given(image=images(), proxy=st.booleans())
def test_any_image_answers_2xx_or_4xx_and_good_ones_200(fuzzed, image, proxy):
    data, unchanged, fmt = image
    if proxy:
        event = {"httpMethod": "POST", "headers": {"Content-Type": "image/png"}, "requestContext": {},
                 "body": b64(data), "isBase64Encoded": True}
    else:
        event = {"image": b64(data)}
    status, body = answer(fuzzed, event)
    if unchanged:  # good images answer 200 in an admitted format, 400 in any other
        assert status == (200 if fmt in DEFAULT_FORMATS else 400), body


def test_the_sources_cover_every_mode_pillow_decodes():
    decoded = set()
    for mode, fmt in SOURCES:
        buffer = io.BytesIO()
        Image.new(mode, (3, 2)).save(buffer, fmt)
        decoded.add(Image.open(io.BytesIO(buffer.getvalue())).mode)
    assert decoded >= DECODED_MODES


# -- decoder classes (issue 17 item 1): each admitted format, sizes and counts drawn --------------


def _saved(image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# Where each format's header says its size: (offset, struct layout, largest value).
DECLARED_SIZE = {"PNG": (16, ">II", 2**31 - 1), "BMP": (18, "<ii", 2**31 - 1), "GIF": (6, "<HH", 2**16 - 1)}


@st.composite
def decoder_bombs(draw):
    """Hostile files of every decoder class: declared sizes, strips, scans, frames, text chunks and
    embedded containers, each count or size drawn."""
    from test_handler_bombs import (
        blp1_jpeg,
        gif_with_comment_blocks,
        icns_holding,
        ico_holding,
        png_with_empty_chunks,
        png_with_text,
        progressive_with_empty_scans,
        tiff_with_strips,
    )
    from test_handler_input import big_png

    kind = draw(st.sampled_from(["declared size", "tiff strips", "jpeg scans", "frames", "png text", "chunks", "container"]))
    side = st.integers(1, 64)
    if kind == "declared size":  # a header claiming any size over a few real bytes, in each admitted format
        fmt = draw(st.sampled_from(DEFAULT_FORMATS))
        data = bytearray(_saved(Image.new("RGB", (draw(side), draw(side))), fmt))
        if fmt in DECLARED_SIZE:  # (JPEG and TIFF: their headers are mutated by test_any_image...)
            offset, layout, largest = DECLARED_SIZE[fmt]
            size = struct.pack(layout, draw(st.integers(0, largest)), draw(st.integers(0, largest)))
            data[offset : offset + len(size)] = size
        return bytes(data)
    if kind == "tiff strips":
        return tiff_with_strips(draw(st.integers(1, 50_000)), draw(side), draw(side))
    if kind == "jpeg scans":
        return progressive_with_empty_scans(draw(st.integers(0, 1500)), (draw(st.integers(8, 256)), draw(st.integers(8, 256))))
    if kind == "frames":
        fmt = draw(st.sampled_from(["GIF", "PNG", "WEBP", "TIFF"]))
        size = (draw(side), draw(side))
        frames = [Image.new("RGB", size, (i % 256, 0, 0)) for i in range(draw(st.integers(1, 60)))]
        return _saved(frames[0], fmt, save_all=True, append_images=frames[1:])
    if kind == "chunks":
        count = draw(st.integers(0, 20_000))
        return png_with_empty_chunks(count) if draw(st.booleans()) else gif_with_comment_blocks(count)
    if kind == "png text":
        return png_with_text(draw(st.integers(0, 40)), draw(st.integers(0, 1024 * 1024)))
    inner = big_png(draw(st.integers(1, 4000)), draw(st.integers(1, 4000)), "L")
    return draw(st.sampled_from([ico_holding(inner, draw(st.integers(0, 255))), blp1_jpeg(inner), icns_holding(inner)]))


@given(data=decoder_bombs(), proxy=st.booleans())
def test_decoder_bombs_answer_4xx_or_200_quickly(fuzzed, data, proxy):
    import time

    if proxy:
        event = {"httpMethod": "POST", "headers": {"Content-Type": "image/png"}, "requestContext": {},
                 "body": b64(data), "isBase64Encoded": True}
    else:
        event = {"image": b64(data)}
    start = time.perf_counter()
    answer(fuzzed, event)
    assert time.perf_counter() - start < 5.0
