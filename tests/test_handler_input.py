"""The shipped handler against hostile events and images: nesting, wrong types, the pixel budget."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from conftest import TINY_LABELS
from PIL import Image
from test_handler import b64, handler, http_api_event, proxy_result, rest_event  # noqa: F401 (handler is a fixture)

from lamb.handler import lambkit


def big_png(width: int, height: int, mode: str = "RGBA") -> bytes:
    """A real PNG of black pixels, compressed a row at a time (never held decoded): 10000x5000
    RGBA is the issue's 194 KB, 50-megapixel image."""
    channels, colour_type = {"L": (1, 0), "RGB": (3, 2), "RGBA": (4, 6)}[mode]

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\0" * (1 + width * channels)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def png_50_megapixels():
    return big_png(10000, 5000)


# -- 3. deeply nested JSON -------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1000, 100_000])
@pytest.mark.parametrize("opening, closing", [('{"a":', "}"), ("[", "]")])
def test_deeply_nested_json_body_is_a_400(handler, depth, opening, closing):  # noqa: F811
    body = opening * depth + "1" + closing * depth
    for event in (rest_event(body), http_api_event(body), http_api_event(b64(body.encode()), base64_encoded=True)):
        status, answer = proxy_result(handler.lambda_handler(event, None))
        assert status == 400, answer
        # 1,000 levels may parse on Pythons with a deeper C stack limit: then it is just not an image request
        assert "nested too deeply" in answer["error"] or (depth == 1000 and '"url" or "image"' in answer["error"])


def test_a_2_kb_body_is_enough_and_still_a_400(handler):  # noqa: F811
    status, answer = proxy_result(handler.lambda_handler(http_api_event("[" * 2048), None))
    assert status == 400 and "nested too deeply" in answer["error"]


def test_a_huge_integer_is_not_json_we_take(handler):  # noqa: F811
    status, answer = proxy_result(handler.lambda_handler(rest_event('{"image": ' + "9" * 5000 + "}"), None))
    assert status == 400 and "not valid JSON" in answer["error"]


# -- 6. every field of a proxy event can have the wrong type ----------------------------------------


def with_field(event, **fields):
    return {**event, **fields}


WRONG_TYPES = [
    (with_field(rest_event("{}"), headers={"Content-Type": 5}), '"headers" must be an object whose values are strings'),
    (with_field(rest_event("{}"), headers=["Content-Type", "application/json"]), '"headers" must be an object'),
    (with_field(rest_event("{}"), headers={"Content-Type": None}), '"headers" must be an object'),
    (with_field(http_api_event(None), queryStringParameters=[["url", "http://x/"]]), '"queryStringParameters" must be an object'),
    (with_field(http_api_event(None), queryStringParameters={"url": ["http://x/"]}), '"queryStringParameters" must be an object'),
    (with_field(http_api_event(None), queryStringParameters="url=http://x/"), '"queryStringParameters" must be an object'),
    (rest_event('{"image": "\ud800"}'), "lone surrogate"),
    (rest_event("\udcff\udcfe"), "lone surrogate"),
    (with_field(rest_event("{}"), isBase64Encoded="false"), '"isBase64Encoded" must be true or false'),
    (with_field(rest_event("{}"), isBase64Encoded=1), '"isBase64Encoded" must be true or false'),
    (with_field(rest_event("{}"), body={"image": "abc"}), "body must be a string"),
    (with_field(rest_event("{}"), body=["x"]), "body must be a string"),
    (rest_event(json.dumps({"url": {"nested": True}})), '"url" must be a non-empty string'),
    (rest_event(json.dumps({"image": ["a"]})), '"image" must be a base64 string'),
    (rest_event(json.dumps(["image"])), 'expected a JSON object'),
]


@pytest.mark.parametrize("event, fragment", WRONG_TYPES)
def test_wrong_typed_proxy_fields_answer_400(handler, event, fragment):  # noqa: F811
    status, answer = proxy_result(handler.lambda_handler(event, None))
    assert status == 400 and fragment in answer["error"], answer


# -- 5. the pixel budget, from the image's header, before decoding -----------------------------------


def test_default_budget_follows_the_memory_setting(handler, monkeypatch):  # noqa: F811
    monkeypatch.delenv("LAMB_MAX_IMAGE_PIXELS", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    assert lambkit.max_image_pixels() == 2048 * 2048  # a quarter of 128 MiB at 8 bytes a pixel
    assert lambkit.pixel_budget(1024) == 8 * 2048 * 2048
    assert lambkit.pixel_budget(10240) == Image.MAX_IMAGE_PIXELS  # Pillow's bomb limit still refuses first
    monkeypatch.setenv("LAMB_MAX_IMAGE_PIXELS", "1000000")
    assert lambkit.max_image_pixels() == lambkit.pixel_budget(10240, 1_000_000) == 1_000_000
    monkeypatch.setenv("LAMB_MAX_IMAGE_PIXELS", "lots")  # a typo falls back to the memory rule
    assert lambkit.max_image_pixels() == 2048 * 2048


def test_the_50_megapixel_png_is_refused_before_decoding(handler, monkeypatch, png_50_megapixels):  # noqa: F811
    monkeypatch.delenv("LAMB_MAX_IMAGE_PIXELS", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    assert len(png_50_megapixels) < 200_000
    result = handler.lambda_handler({"image": b64(png_50_megapixels)}, None)
    assert result["statusCode"] == 413
    assert result["error"] == (
        "the image is 10000x5000, 50.0 megapixels, over the pixel budget of 4.2 megapixels "
        "(a quarter of the function's 128 MB; give it more memory or set LAMB_MAX_IMAGE_PIXELS)"
    )
    status, answer = proxy_result(handler.lambda_handler(rest_event(b64(png_50_megapixels), base64_encoded=True, content_type="image/png"), None))
    assert status == 413 and "pixel budget" in answer["error"]


def test_the_budget_is_exact(handler, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LAMB_MAX_IMAGE_PIXELS", "2000")
    at, over = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (40, 50)).save(at, "PNG")
    Image.new("RGB", (41, 50)).save(over, "PNG")
    assert list(handler.lambda_handler({"image": b64(at.getvalue())}, None)) == TINY_LABELS
    assert handler.lambda_handler({"image": b64(over.getvalue())}, None)["statusCode"] == 413


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F", "LA", "PA", "I;16", "RGBX"])
def test_resizing_before_converting_gives_the_same_pixels(handler, mode):  # noqa: F811
    rng = np.random.default_rng(0)
    image = Image.new(mode, (97, 61))
    image.putdata([tuple(rng.integers(0, 256, len(image.getbands()))) if len(image.getbands()) > 1 else int(rng.integers(0, 256)) for _ in range(97 * 61)])
    convert_first = np.asarray(image.convert("RGB").resize((32, 32), Image.NEAREST), dtype=np.float32)
    np.testing.assert_array_equal(lambkit.image_to_pixels(image, (32, 32)), convert_first)


def test_a_mode_that_cannot_become_rgb_is_a_400(handler):  # noqa: F811
    with pytest.raises(lambkit.ImageError, match="cannot use a La image"):
        lambkit.image_to_pixels(Image.new("La", (5, 5)), (32, 32))


def test_hostile_image_bytes_found_by_fuzzing_are_400s(handler):  # noqa: F811
    # A mutated DDS header: Pillow's DDS plugin raised NotImplementedError for its pixel format.
    # DDS is no longer opened at all (not an admitted format).
    dds = (
        b"DDS |\x00\x00\x00\x00\x0f\x10\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x03" + b"\x00" * 56
        + b" \x00\x00\x00@\x00\x00\x00\x00\x00\x00\x00\x18\x00\x00\x00\x00\x00\xff\x00\x00\xff\x00\x00\xff"
        + b"\x00" * 9 + b"\x10" + b"\x00" * 21
    )
    result = handler.lambda_handler({"image": b64(dds)}, None)
    assert result["statusCode"] == 400 and result["error"].startswith("not a decodable image in a format this function opens")


# -- decode bounds (issue 17 item 1); the memory-measured cases are in test_handler_bombs.py ------


class _Context:
    def __init__(self, remaining_ms: int):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_decoding_stops_at_the_functions_remaining_time(handler, monkeypatch):  # noqa: F811
    import time

    monkeypatch.setenv("LAMB_MAX_IMAGE_PIXELS", "60000000")
    data = big_png(7000, 7000, "RGB")  # 49 megapixels inside the budget: a second or more to inflate
    start = time.perf_counter()
    result = handler.lambda_handler({"image": b64(data)}, _Context(1200))  # 0.2 s left after the 1 s margin
    took = time.perf_counter() - start
    assert result["statusCode"] == 413 and "remaining time" in result["error"], result
    assert took < 1.0, took


def test_only_the_first_frame_is_decoded_whatever_the_count(handler):  # noqa: F811
    import time

    frames = [Image.new("P", (64, 64), i % 256) for i in range(3000)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=10)
    start = time.perf_counter()
    assert list(handler.lambda_handler({"image": b64(buffer.getvalue())}, None)) == TINY_LABELS
    assert time.perf_counter() - start < 1.0


def test_real_progressive_jpegs_and_tiffs_pass_the_cost_checks(handler):  # noqa: F811
    from lamb.handler.lambkit import costs, decode

    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8))
    for fmt, options in [("JPEG", {"progressive": True}), ("JPEG", {}), ("TIFF", {"compression": "tiff_lzw"}),
                         ("TIFF", {}), ("TIFF", {"compression": "jpeg"})]:
        buffer = io.BytesIO()
        rgb.save(buffer, fmt, **options)
        costs.check(buffer.getvalue(), ("JPEG", "TIFF"))  # no ImageError
        assert list(handler.lambda_handler({"image": b64(buffer.getvalue())}, None)) == TINY_LABELS
    grey = io.BytesIO()
    rgb.convert("L").save(grey, "JPEG", progressive=True)
    assert costs.jpeg_segments(grey.getvalue(), 1000)[0] < 12
    from test_handler_bombs import bmp_rle8

    assert decode.decode_image(bmp_rle8(b"\x02\x05\x00\x00\x02\x07\x00\x01", 2, 2)).size == (2, 2)  # a real RLE8 bitmap
    for image in (rgb.convert("P"), rgb.convert("L")):  # real BMPs, palette and greyscale
        buffer = io.BytesIO()
        image.save(buffer, "BMP")
        costs.check(buffer.getvalue(), ("BMP",))


def test_bad_settings_are_refused_at_init_with_one_line_and_the_default_used(tmp_path, converted_tiny, monkeypatch, capsys):
    from conftest import make_task_root
    from test_handler import load_handler

    from lamb.handler.lambkit import fetch, settings

    bad = {"LAMB_FETCH_TIMEOUT_S": "nan", "LAMB_MAX_DOWNLOAD_BYTES": "-5", "LAMB_MAX_IMAGE_PIXELS": "inf",
           "LAMB_NUM_THREADS": "lots", "LAMB_ALLOW_PRIVATE_URLS": "maybe", "LAMB_LOG_TIMING": "2",
           "LAMB_IMAGE_FORMATS": "PNG,ICO"}
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    handler = load_handler(make_task_root(tmp_path / "task", converted_tiny))  # noqa: F811
    logged = capsys.readouterr().err.splitlines()
    for name, value in bad.items():
        assert sum(line.startswith(f"lamb: refusing {name}={value!r}: ") and "using the default" in line for line in logged) == 1, name
    s = settings.current()
    assert (s.fetch_timeout_s, s.max_download_bytes, s.max_image_pixels, s.num_threads, s.allow_private_urls, s.log_timing,
            s.image_formats) == (15.0, 16 * 1024 * 1024, 0, 0, False, False, ())
    assert fetch.fetch_deadline().seconds == 15.0  # nan once made every url a 500
    result = handler.lambda_handler({"url": "http://169.254.169.254/x"}, None)
    assert result["statusCode"] == 400 and "non-public" in result["error"]
    for value in ("0", "-1", "1e400", "", " 7 "):  # every number setting: zero, negative, inf
        monkeypatch.setenv("LAMB_FETCH_TIMEOUT_S", value)
        assert settings.current().fetch_timeout_s == (7.0 if value == " 7 " else 15.0)


def _bigtiff(strips: int, width: int = 2, height: int = 1) -> bytes:
    """A BigTIFF (8-byte counts and offsets) declaring ``strips`` strips; only its directory matters."""
    entries = [(256, 16, 1, width), (257, 16, 1, height), (273, 16, strips, 0), (279, 16, strips, 0)]
    ifd = struct.pack("<Q", len(entries)) + b"".join(struct.pack("<HHQQ", *e) for e in entries) + b"\0" * 8
    return b"II+\0" + struct.pack("<HHQ", 8, 0, 16) + ifd


@pytest.mark.parametrize(
    "data, status, fragment",
    [
        (_bigtiff(10_000), 413, "10,000 strips or tiles for 2x1 pixels"),
        (b"MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 2) + struct.pack(">HHII", 256, 4, 1, 4) + struct.pack(">HHII", 324, 4, 999, 0),
         413, "999 strips or tiles for 4x0 pixels"),  # big-endian, tiles
        (b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 40), 400, "first directory is cut short"),
        (b"II*\0" + struct.pack("<I", 10**9), 400, "first directory is cut short"),
    ],
)
def test_tiff_directories_are_read_before_pillow(data, status, fragment):
    from lamb.handler.lambkit import costs, errors

    with pytest.raises(errors.ImageError, match=fragment) as refused:
        costs.check(data, ("TIFF",))
    assert refused.value.status == status


def test_os2_bitmaps_have_no_run_length_to_bound(handler):  # noqa: F811
    from lamb.handler.lambkit import costs

    header = struct.pack("<IHHHH", 12, 2, 2, 1, 24)  # OS/2 BITMAPCOREHEADER: 16-bit sizes, no compression field
    pixels = b"\x10\x20\x30" * 2 + b"\0\0" + b"\x40\x50\x60" * 2 + b"\0\0"
    data = b"BM" + struct.pack("<IHHI", 26 + len(pixels), 0, 0, 26) + header + pixels
    costs.check(data, ("BMP",))  # nothing to refuse
    assert list(handler.lambda_handler({"image": b64(data)}, None)) == TINY_LABELS
