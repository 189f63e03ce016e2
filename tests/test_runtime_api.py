"""The Runtime API lamb serves to AWS's runtime interface client (lamb.runtime_api), and local runs
under awslambdaric itself (installed for a Python it has a wheel for, lamb.runtime_client)."""

from __future__ import annotations

import http.client
import json
import os
import threading
import zipfile

import pytest

from lamb.local import STAND_IN_CLIENT, LocalFunction, RunSettings, runtime_client_name
from lamb.runtime_api import INIT_ERROR, NEXT, RuntimeAPI, RuntimeAPIChannel
from lamb.runtime_client import WHEEL_PYTHONS, runtime_client_for
from lamb.targets import find_python, host_arch, host_python

HANDLERS = {
    "good": "def lambda_handler(event, context):\n    print('request', context.aws_request_id)\n    return {'echo': event, 'left_ms': context.get_remaining_time_in_millis()}\n",
    "failing_init": "raise RuntimeError('model file missing')\n",
    "missing_handler": "def handler(event, context):\n    return 1\n",
    "import_error": "import keras_image_helper\n\ndef lambda_handler(event, context):\n    return 1\n",
    "slow": "import time\n\ndef lambda_handler(event, context):\n    time.sleep(30)\n",
    "raising": "def lambda_handler(event, context):\n    raise ValueError('bad input')\n",
}


def _post(address: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection(address, timeout=10)
    conn.request("POST", path, body, headers or {})
    status = conn.getresponse().status
    conn.close()
    return status


def test_the_runtime_api_hands_out_an_event_and_takes_the_answer():
    """The protocol, spoken by hand as awslambdaric speaks it (lambda_runtime_client.py)."""
    api = RuntimeAPI("arn:aws:lambda:us-east-1:000000000000:function:f")
    channel = RuntimeAPIChannel(api, os.getpid())
    got = {}

    def client():
        conn = http.client.HTTPConnection(api.address, timeout=10)
        conn.request("GET", NEXT)
        response = conn.getresponse()
        got["headers"], got["body"] = dict(response.headers), response.read()
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", b'{"cat": 0.9}')
        got["status"] = conn.getresponse().status
        conn.close()

    try:
        thread = threading.Thread(target=client)
        thread.start()
        init = channel.read_message(10)  # the client's first GET: init is done
        assert init["type"] == "init" and init["error"] is None and init["peak_rss_mb"] > 0
        channel.send({"request_id": "r-1", "event": {"url": "https://x/y.jpg"}, "deadline_ms": 1_700_000_000_000})
        result = channel.read_message(10)
        thread.join(10)
        assert result["type"] == "result" and result["request_id"] == "r-1" and result["response"] == {"cat": 0.9}
        assert result["invoke_ms"] >= 0 and got["status"] == 202
        assert json.loads(got["body"]) == {"url": "https://x/y.jpg"}
        assert got["headers"]["Lambda-Runtime-Deadline-Ms"] == "1700000000000"
        assert got["headers"]["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:f")
        error = {"errorMessage": "Handler 'h' missing on module 'm'", "errorType": "Runtime.HandlerNotFound", "requestId": "", "stackTrace": []}
        assert _post(api.address, INIT_ERROR, json.dumps(error).encode(), {"Lambda-Runtime-Function-Error-Type": "Runtime.HandlerNotFound"}) == 202
        init_error = channel.read_message(10)
        assert init_error["type"] == "init" and init_error["error"] == {k: v for k, v in error.items() if k != "requestId"}
        assert _post(api.address, "/2018-06-01/runtime/elsewhere", b"{}") == 404
    finally:
        api.close()


@pytest.fixture(scope="module")
def ric_settings():
    python = find_python("3.12")
    if python is None:
        pytest.skip("no CPython 3.12 on this machine (awslambdaric 4.2.2 has wheels for 3.12 to 3.14)")
    client, why = runtime_client_for("3.12", host_arch() or "x86_64")
    assert client is not None, why
    return RunSettings(python=python, runtime_client=client, timeout_s=2.0)


@pytest.fixture
def roots(tmp_path):
    for name, source in HANDLERS.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "lambda_function.py").write_text(source)
    return tmp_path


@pytest.mark.network  # installs awslambdaric for each Python into lamb's cache (once)
@pytest.mark.parametrize("version", WHEEL_PYTHONS)
def test_a_good_handler_runs_under_awslambdaric(roots, version):
    python = find_python(version)
    if python is None:
        pytest.skip(f"no CPython {version} on this machine")
    client, why = runtime_client_for(version, host_arch() or "x86_64")
    assert client is not None, why
    settings = RunSettings(python=python, runtime_client=client, timeout_s=2.0)
    assert runtime_client_name(settings) == f"AWS's runtime interface client (awslambdaric-4.2.2-py{version}-{host_arch()})"
    with LocalFunction(roots / "good", settings) as fn:
        cold = fn.invoke({"a": 1})
        warm = fn.invoke({"a": 2})
    assert cold.error is None and cold.cold and not warm.cold
    assert cold.response["echo"] == {"a": 1} and warm.response["echo"] == {"a": 2}
    assert 0 < cold.response["left_ms"] <= 2000  # the deadline the Runtime API gave it
    assert f"request {cold.request_id}" in cold.logs  # the context carries lamb's request id
    assert cold.init_ms > 0 and cold.invoke_ms is not None and cold.peak_rss_mb > 0


@pytest.mark.network
@pytest.mark.parametrize(
    "name, error_type, message",
    [
        ("failing_init", "RuntimeError", "model file missing"),
        ("missing_handler", "Runtime.HandlerNotFound", "Handler 'lambda_handler' missing on module 'lambda_function'"),
        ("import_error", "Runtime.ImportModuleError", "Unable to import module 'lambda_function': No module named 'keras_image_helper'"),
    ],
)
def test_init_errors_read_as_awslambdaric_writes_them(roots, ric_settings, name, error_type, message):
    with LocalFunction(roots / name, ric_settings) as fn:
        assert fn.init_error["errorType"] == error_type and fn.init_error["errorMessage"] == message
        result = fn.invoke({})
    assert result.error["errorType"] == error_type and result.response is None and result.cold
    assert "LAMBDA_WARNING: Unhandled exception" in result.logs  # the client's own log line


@pytest.mark.network
def test_stand_in_init_errors_read_the_same(roots):
    """Where no awslambdaric wheel exists, lamb's stand-in reports init errors in the same words."""
    for name, error_type in (("failing_init", "RuntimeError"), ("missing_handler", "Runtime.HandlerNotFound"),
                             ("import_error", "Runtime.ImportModuleError")):
        with LocalFunction(roots / name) as fn:
            assert fn.init_error["errorType"] == error_type, fn.init_error
    assert runtime_client_name(RunSettings()) == STAND_IN_CLIENT


@pytest.mark.network
def test_a_timeout_and_a_raising_handler_under_awslambdaric(roots, ric_settings):
    with LocalFunction(roots / "slow", ric_settings) as fn:
        timed_out = fn.invoke({})
        assert fn.pid is None  # the environment was killed, as Lambda does
        again = fn.invoke({})
    assert timed_out.error["errorType"] == "Sandbox.Timedout" and "timed out after 2.00 seconds" in timed_out.error["errorMessage"]
    assert again.cold  # the next one starts a new environment
    with LocalFunction(roots / "raising", ric_settings) as fn:
        raised = fn.invoke({})
    assert raised.error["errorType"] == "ValueError" and raised.error["errorMessage"] == "bad input"
    assert any("raise ValueError('bad input')" in frame for frame in raised.error["stackTrace"])


@pytest.mark.network
def test_invoke_says_which_runtime_client_ran(roots, ric_settings, tmp_path):
    from lamb.invoke import invoke_artifact

    artifact = tmp_path / "good.zip"
    with zipfile.ZipFile(artifact, "w") as zf:
        zf.write(roots / "good" / "lambda_function.py", "lambda_function.py")
    under_ric = invoke_artifact(artifact, event={"a": 1}, settings=RunSettings(python=ric_settings.python))
    assert under_ric.runtime_client.startswith("AWS's runtime interface client") and under_ric.python == "3.12"
    own = invoke_artifact(artifact, event={"a": 1})  # lamb's own Python
    assert own.response["echo"] == under_ric.response["echo"]
    if host_python() not in WHEEL_PYTHONS:
        assert own.runtime_client == STAND_IN_CLIENT
        assert any(f"awslambdaric has no wheel for Python {host_python()}" in note for note in own.notes)
    assert runtime_client_for("3.11", "x86_64") == (None, "awslambdaric has no wheel for Python 3.11: lamb's stand-in bootstrap ran the handler")


@pytest.mark.network
def test_a_response_over_lambdas_limit_is_the_error_lambda_returns(tmp_path, ric_settings):
    from lamb.runtime_api import MAX_RESPONSE_BYTES

    (tmp_path / "lambda_function.py").write_text(f"def lambda_handler(event, context):\n    return 'x' * {MAX_RESPONSE_BYTES}\n")
    with LocalFunction(tmp_path, ric_settings) as fn:
        result = fn.invoke({})
    assert result.response is None and result.error["errorType"] == "Function.ResponseSizeTooLarge"
    assert f"exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)" in result.error["errorMessage"]
