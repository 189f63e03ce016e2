"""The shipped handler, imported in-process from a task root (handler + model.tflite + lamb.json)."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import socket
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_LABELS, make_task_root
from PIL import Image

from lamb.handler.lambkit import fetch, settings

PRIVATE_URLS = [
    "http://127.0.0.1/cat.png",
    "http://10.1.2.3/cat.png",
    "http://192.168.0.1/",
    "http://172.16.0.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data/",  # EC2/Lambda metadata
    "http://[::1]/",
    "http://[fd00:ec2::254]/latest/meta-data/",  # the metadata service over IPv6
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
    "http://0.0.0.0/",
    "http://localhost:9001/2018-06-01/runtime/invocation/next",  # the Lambda runtime API
]


def load_handler(task_root):
    """Import ``task_root/lambda_function.py`` as a fresh module (its own model, loaded from
    ``task_root``). Its ``from lambkit import ...`` gets ``lamb.handler.lambkit``: the same code
    as the copy in ``task_root`` (the artifact tests run that copy as a top-level package)."""
    import lamb.handler.lambkit

    sys.modules.setdefault("lambkit", lamb.handler.lambkit)
    name = f"lambda_function_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, task_root / "lambda_function.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAMBDA_TASK_ROOT", str(task_root))
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler(tmp_path, converted_tiny, monkeypatch):
    monkeypatch.delenv("LAMB_ALLOW_PRIVATE_URLS", raising=False)
    return load_handler(make_task_root(tmp_path / "task", converted_tiny))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def expected_scores(converted, png: bytes):
    """What the model computes for ``png``, run here without the handler's event plumbing."""
    from ai_edge_litert.interpreter import Interpreter

    from lamb.handler.lambkit import decode_image, image_to_pixels, preprocess

    interpreter = Interpreter(model_path=str(converted.model_path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    x = preprocess(image_to_pixels(decode_image(png), detail["shape"][1:3]), converted.manifest.preprocess)[None]
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).reshape(-1)


def assert_scores(result, converted, png):
    assert list(result) == TINY_LABELS
    np.testing.assert_allclose([result[k] for k in TINY_LABELS], expected_scores(converted, png), rtol=1e-5, atol=1e-6)


# -- event kinds ----------------------------------------------------------------------------------


def test_base64_image_event(handler, converted_tiny, png_bytes):
    assert_scores(handler.lambda_handler({"image": b64(png_bytes)}, None), converted_tiny, png_bytes)


def test_base64_data_url_and_line_breaks(handler, converted_tiny, png_bytes):
    text = b64(png_bytes)
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert_scores(handler.lambda_handler({"image": "data:image/png;base64," + wrapped}, None), converted_tiny, png_bytes)


def test_url_event_allowed_by_env(handler, converted_tiny, png_bytes, image_server, monkeypatch):
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    assert_scores(handler.lambda_handler({"url": image_server + "/cat.png"}, None), converted_tiny, png_bytes)


def test_url_redirect_followed(handler, converted_tiny, png_bytes, image_server, monkeypatch):
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    result = handler.lambda_handler({"url": image_server + "/redirect?to=/cat.png"}, None)
    assert_scores(result, converted_tiny, png_bytes)


def test_jpeg_grayscale_and_rgba_images(handler):
    for mode in ("L", "RGBA", "P"):
        buf = io.BytesIO()
        Image.new(mode, (20, 30)).save(buf, "PNG")
        result = handler.lambda_handler({"image": b64(buf.getvalue())}, None)
        assert list(result) == TINY_LABELS
    buf = io.BytesIO()
    Image.new("RGB", (100, 60), (10, 200, 30)).save(buf, "JPEG")
    assert list(handler.lambda_handler({"image": b64(buf.getvalue())}, None)) == TINY_LABELS


def rest_event(body, *, base64_encoded=False, content_type="application/json", method="POST"):
    return {
        "resource": "/predict", "path": "/predict", "httpMethod": method,
        "headers": {"Content-Type": content_type} if content_type else None,
        "queryStringParameters": None, "requestContext": {"resourcePath": "/predict", "httpMethod": method},
        "body": body, "isBase64Encoded": base64_encoded,
    }


def http_api_event(body, *, base64_encoded=False, content_type="application/json", query=None):
    # HTTP API (v2) and Lambda Function URLs share this payload format.
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": content_type}, "queryStringParameters": query,
        "requestContext": {"http": {"method": "POST", "path": "/"}, "domainName": "abc.lambda-url.us-east-1.on.aws"},
        "body": body, "isBase64Encoded": base64_encoded,
    }


def proxy_result(response):
    assert set(response) >= {"statusCode", "headers", "body"}
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_rest_api_json_body(handler, converted_tiny, png_bytes):
    status, body = proxy_result(handler.lambda_handler(rest_event(json.dumps({"image": b64(png_bytes)})), None))
    assert status == 200
    assert_scores(body, converted_tiny, png_bytes)


def test_rest_api_binary_body(handler, converted_tiny, png_bytes):
    event = rest_event(b64(png_bytes), base64_encoded=True, content_type="image/png")
    status, body = proxy_result(handler.lambda_handler(event, None))
    assert status == 200
    assert_scores(body, converted_tiny, png_bytes)


def test_http_api_json_body_base64_encoded(handler, converted_tiny, png_bytes):
    event = http_api_event(b64(json.dumps({"image": b64(png_bytes)}).encode()), base64_encoded=True)
    status, body = proxy_result(handler.lambda_handler(event, None))
    assert status == 200
    assert_scores(body, converted_tiny, png_bytes)


def test_function_url_binary_body(handler, converted_tiny, png_bytes):
    event = http_api_event(b64(png_bytes), base64_encoded=True, content_type="application/octet-stream")
    status, body = proxy_result(handler.lambda_handler(event, None))
    assert status == 200
    assert_scores(body, converted_tiny, png_bytes)


def test_function_url_query_url(handler, converted_tiny, png_bytes, image_server, monkeypatch):
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    event = http_api_event(None, query={"url": image_server + "/cat.png"})
    status, body = proxy_result(handler.lambda_handler(event, None))
    assert status == 200
    assert_scores(body, converted_tiny, png_bytes)


def test_labels_default_to_indices(tmp_path, converted_tiny, png_bytes):
    import dataclasses

    from lamb import manifest as mf

    root = make_task_root(tmp_path / "task", converted_tiny)
    mf.write(dataclasses.replace(converted_tiny.manifest, model=dataclasses.replace(converted_tiny.manifest.model, file="model.tflite"), labels=None), root / "lamb.json")
    result = load_handler(root).lambda_handler({"image": b64(png_bytes)}, None)
    assert list(result) == ["0", "1", "2", "3"]


def test_int8_model_quantizes_input_and_dequantizes_output(tmp_path, tiny_classifier_h5, sample_images, png_bytes, converted_tiny):
    from lamb.convert import convert_model

    converted = convert_model(
        tiny_classifier_h5, tmp_path / "int8.tflite", quantize="int8", calibration=sample_images,
        integer_io=True, preprocess="xception", labels=list(TINY_LABELS),
    )
    assert converted.manifest.inputs[0].dtype == "int8"
    result = load_handler(make_task_root(tmp_path / "task", converted)).lambda_handler({"image": b64(png_bytes)}, None)
    assert list(result) == TINY_LABELS
    got = np.array([result[k] for k in TINY_LABELS])
    want = expected_scores(converted_tiny, png_bytes)  # the float model: int8 must stay close
    assert np.all(np.isfinite(got))
    assert np.max(np.abs(got - want)) < 0.1 * max(1.0, np.max(np.abs(want)))


# -- bad input: a JSON error, never an exception ---------------------------------------------------


@pytest.mark.parametrize(
    "event, fragment",
    [
        ({}, '"url" or "image"'),
        ({"foo": 1}, '"url" or "image"'),
        ([1, 2], '"url" or "image"'),
        ("just a string", '"url" or "image"'),
        (None, '"url" or "image"'),
        ({"image": "!!!not base64!!!"}, "not valid base64"),
        ({"image": 42}, "base64 string"),
        ({"image": ""}, "empty"),
        ({"image": base64.b64encode(b"GIF89a but not really").decode()}, "not a decodable image"),
        ({"image": base64.b64encode(b"hello world").decode()}, "not a decodable image"),
        ({"url": ""}, "non-empty string"),
        ({"url": 7}, "non-empty string"),
        ({"url": "ftp://example.com/cat.png"}, "only http and https"),
        ({"url": "file:///etc/passwd"}, "only http and https"),
        ({"url": "/relative/cat.png"}, "only http and https"),
        ({"url": "http:///nohost"}, "no host"),
        ({"url": "http://example.com:99999/"}, "Port out of range"),
        ({"url": "http://no-such-host.invalid/cat.png"}, "cannot resolve"),
    ],
)
def test_bad_direct_events(handler, event, fragment):
    result = handler.lambda_handler(event, None)
    assert result["statusCode"] == 400
    assert fragment in result["error"]


def test_base64_over_lambda_payload_limit(handler):
    result = handler.lambda_handler({"image": "A" * (6 * 1024 * 1024 + 4)}, None)
    assert result["statusCode"] == 413
    assert "6 MB" in result["error"]


def test_proxy_body_over_payload_limit(handler):
    status, body = proxy_result(handler.lambda_handler(rest_event("A" * (6 * 1024 * 1024 + 4), base64_encoded=True), None))
    assert status == 413 and "6 MB" in body["error"]


@pytest.mark.parametrize(
    "event",
    [
        rest_event("{not json"),
        rest_event("not base64 !!", base64_encoded=True),
        rest_event(None),
        rest_event("hello, plain text", content_type="text/plain"),
        http_api_event(json.dumps({"nothing": True})),
    ],
)
def test_bad_proxy_events_answer_400_json(handler, event):
    status, body = proxy_result(handler.lambda_handler(event, None))
    assert status == 400
    assert body["statusCode"] == 400 and body["error"]


def test_decompression_bomb_refused_by_pixel_cap(handler, monkeypatch):
    monkeypatch.setenv("LAMB_MAX_IMAGE_PIXELS", "1000")
    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, "PNG")
    result = handler.lambda_handler({"image": b64(buf.getvalue())}, None)
    assert result["statusCode"] == 413 and "100x100, 10,000 pixels, over the pixel budget of 1,000 pixels (LAMB_MAX_IMAGE_PIXELS)" in result["error"]


def test_pillow_bomb_warning_is_an_error(handler, monkeypatch):
    # Between MAX_IMAGE_PIXELS and twice that, Pillow only warns; the handler must refuse.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)
    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, "PNG")  # 10,000 px: a warning, not Pillow's own error
    result = handler.lambda_handler({"image": b64(buf.getvalue())}, None)
    assert result["statusCode"] == 413 and "decompression bomb" in result["error"]


def test_broken_model_answers_500_not_exception(tmp_path, converted_tiny, png_bytes):
    root = make_task_root(tmp_path / "task", converted_tiny)
    (root / "model.tflite").write_bytes(b"this is not a flatbuffer")
    module = load_handler(root)
    for _ in range(2):  # remembered, not retried into a different failure
        result = module.lambda_handler({"image": b64(png_bytes)}, None)
        assert result["statusCode"] == 500 and "could not be loaded" in result["error"]
    status, body = proxy_result(module.lambda_handler(rest_event(json.dumps({"image": b64(png_bytes)})), None))
    assert status == 500 and "could not be loaded" in body["error"]


def test_a_model_that_failed_to_load_answers_500_in_one_line(tmp_path, capsys, png_bytes):
    (tmp_path / "lambda_function.py").write_bytes((Path(__file__).parent.parent / "lamb" / "handler" / "lambda_function.py").read_bytes())
    (tmp_path / "lamb.json").write_text('{"preprocess": "xception", "model": {"file": "model.onnx", "format": "onnx"}}')
    module = load_handler(tmp_path)  # no model.onnx: the init logs why, and does not raise
    assert "every request will answer 500" in capsys.readouterr().err
    for _ in range(2):  # remembered, not re-tried per request
        result = module.lambda_handler({"image": b64(png_bytes)}, None)
        assert result["statusCode"] == 500 and "could not be loaded" in result["error"] and "\n" not in result["error"]
    with pytest.raises(RuntimeError, match="could not be loaded"):  # a user's entry calling its parts hears why too
        module.model.prepare(None)


# -- url hardening ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_addresses_refused(handler, url):
    result = handler.lambda_handler({"url": url}, None)
    assert result["statusCode"] == 400
    assert "non-public address" in result["error"]


def test_refusal_also_applies_to_proxy_events(handler):
    status, body = proxy_result(handler.lambda_handler(rest_event(json.dumps({"url": "http://169.254.169.254/"})), None))
    assert status == 400 and "non-public" in body["error"]


def test_hostname_resolving_to_loopback_refused(handler, monkeypatch, image_server):
    port = int(image_server.rsplit(":", 1)[1])
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):  # a public-looking name whose DNS answer is loopback
        if host == "images.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    result = handler.lambda_handler({"url": f"http://images.example.com:{port}/cat.png"}, None)
    assert result["statusCode"] == 400 and "resolves to 127.0.0.1" in result["error"]


def test_connects_to_the_checked_address_not_a_second_lookup(handler, monkeypatch, image_server, converted_tiny, png_bytes):
    # DNS rebinding: a second lookup could answer differently. The handler resolves once and
    # connects to that address, so a name only the fake resolver knows still reaches the server.
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    port = int(image_server.rsplit(":", 1)[1])
    calls = []

    def fake(host, *args, **kwargs):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    result = handler.lambda_handler({"url": f"http://rebind.invalid:{port}/cat.png"}, None)
    assert_scores(result, converted_tiny, png_bytes)
    assert calls.count("rebind.invalid") == 1  # (connecting then "resolves" only the IP literal)
    assert set(calls) <= {"rebind.invalid", "127.0.0.1"}


def test_every_redirect_hop_is_rechecked(handler, monkeypatch, image_server):
    # The first hop is allowed, the redirect target is not: the handler must check it again.
    answers = iter([True])
    monkeypatch.setattr(fetch, "_allow_private", lambda: next(answers, False))
    result = handler.lambda_handler({"url": image_server + "/redirect?to=http://169.254.169.254/latest/"}, None)
    assert result["statusCode"] == 400 and "169.254.169.254" in result["error"]


def test_redirect_to_another_scheme_refused(handler, monkeypatch, image_server):
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    result = handler.lambda_handler({"url": image_server + "/redirect?to=file:///etc/passwd"}, None)
    assert result["statusCode"] == 400 and "only http and https" in result["error"]


def test_redirect_loop_stops(handler, monkeypatch, image_server):
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    result = handler.lambda_handler({"url": image_server + "/loop"}, None)
    assert result["statusCode"] == 400 and "redirected more than" in result["error"]


def test_download_size_limit_by_content_length(handler, monkeypatch, image_server):
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.setenv("LAMB_MAX_DOWNLOAD_BYTES", "100")
    result = handler.lambda_handler({"url": image_server + "/cat.png"}, None)
    assert result["statusCode"] == 413


def test_download_size_limit_while_streaming(handler, monkeypatch, image_server):
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.setenv("LAMB_MAX_DOWNLOAD_BYTES", "100000")
    result = handler.lambda_handler({"url": image_server + "/big-no-length"}, None)
    assert result["statusCode"] == 413


def test_fetch_deadline(handler, monkeypatch, image_server):
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.setenv("LAMB_FETCH_TIMEOUT_S", "0.5")
    result = handler.lambda_handler({"url": image_server + "/slow"}, None)
    assert result["statusCode"] == 504 and "within the 0.5 s fetch deadline (LAMB_FETCH_TIMEOUT_S)" in result["error"]


def test_connection_refused_is_a_json_error(handler, monkeypatch):
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = handler.lambda_handler({"url": f"http://127.0.0.1:{port}/cat.png"}, None)
    assert result["statusCode"] == 502 and "could not fetch" in result["error"]


@pytest.mark.parametrize("path, status, fragment", [("/missing", 400, "HTTP 404"), ("/text", 400, "not a decodable image")])
def test_url_errors(handler, monkeypatch, image_server, path, status, fragment):
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    result = handler.lambda_handler({"url": image_server + path}, None)
    assert result["statusCode"] == status and fragment in result["error"]


def test_thread_count_follows_lambda_memory(handler, monkeypatch):
    monkeypatch.delenv("LAMB_NUM_THREADS", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
    assert settings.default_num_threads() == 1  # 0.58 vCPU
    monkeypatch.setenv("LAMB_NUM_THREADS", "3")
    assert settings.default_num_threads() == 3


def test_timing_log_line(handler, png_bytes, monkeypatch, capsys):
    monkeypatch.setenv("LAMB_LOG_TIMING", "1")
    handler.lambda_handler({"image": b64(png_bytes)}, None)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(line["lamb_timing"]) == {"input_ms", "decode_ms", "preprocess_ms", "inference_ms", "inference_cpu_ms"}
    assert line["status"] == 200


def test_several_outputs_answer_per_output_name(tmp_path, png_bytes):
    import keras

    from lamb.convert import convert_model

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, [keras.layers.Dense(3, name="kind")(x), keras.layers.Dense(2, name="colour")(x)])
    model.save(tmp_path / "two.keras")
    converted = convert_model(tmp_path / "two.keras", tmp_path / "two.tflite", preprocess="scale")
    result = load_handler(make_task_root(tmp_path / "task", converted)).lambda_handler({"image": b64(png_bytes)}, None)
    names = [o.name for o in converted.manifest.outputs]
    assert sorted(result) == sorted(names)
    sizes = {o.name: o.shape[-1] for o in converted.manifest.outputs}
    assert all(list(result[n]) == [str(i) for i in range(sizes[n])] for n in names)
    # each output's scores are the ones the model computes for that name (the signature maps names to tensors)
    from ai_edge_litert.interpreter import Interpreter

    from lamb.handler.lambkit import decode_image, image_to_pixels, preprocess

    runner = Interpreter(model_path=str(converted.model_path)).get_signature_runner()
    want = runner(image=preprocess(image_to_pixels(decode_image(png_bytes), (16, 16)), "scale")[None])
    for name in names:
        np.testing.assert_allclose(list(result[name].values()), want[name].reshape(-1), rtol=1e-5, atol=1e-6)
