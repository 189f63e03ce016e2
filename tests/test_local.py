"""LocalFunction: a task root run the way Lambda runs it."""

from __future__ import annotations

import base64
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import TINY_LABELS

from lamb.errors import InputError
from lamb.local import Invocation, LocalFunction, RunSettings

PROBE = '''
import json, os, subprocess, sys, time

def env(event, context):
    return {
        "env": {k: v for k, v in os.environ.items()},
        "cwd": os.getcwd(),
        "path": sys.path,
        "flags": [sys.flags.isolated, sys.flags.no_site, sys.flags.dont_write_bytecode],
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
        },
    }

def can_import(event, context):
    try:
        __import__(event["module"])
    except ImportError:
        return False
    return True

def write_tmp(event, context):
    import tempfile
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(b"x")
    return f.name

def echo(event, context):
    print("echo:", json.dumps(event))
    return event

def boom(event, context):
    raise ValueError("bad thing " + str(event))

def sleep(event, context):
    time.sleep(event)
    return "woke"

def exit3(event, context):
    os._exit(3)

def segfault(event, context):
    import ctypes
    ctypes.string_at(0)

def not_json(event, context):
    return {1, 2}

def spawn(event, context):
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    return p.pid

def hog(event, context):
    block = bytearray(event * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])
    return len(block)
'''


@pytest.fixture
def probe_root(tmp_path):
    root = tmp_path / "task"
    root.mkdir()
    (root / "probe.py").write_text(PROBE)
    (root / "broken.py").write_text("import no_such_module_here\n")
    (root / "syntax.py").write_text("def f(:\n")
    return root


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def gone(pid: int, within: float = 5.0) -> bool:
    """True once ``pid`` has exited. A SIGKILLed grandchild is reaped by init, not by us, and its
    exit takes a moment after the kill."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
def test_tiny_model_cold_then_warm(tiny_task_root, png_bytes):
    event = {"image": base64.b64encode(png_bytes).decode()}
    with LocalFunction(tiny_task_root, RunSettings(memory_mb=512)) as fn:
        first = fn.invoke(event)
        second = fn.invoke(event)
    assert isinstance(first, Invocation)
    assert first.error is None, first.error
    assert list(first.response) == TINY_LABELS
    assert second.response == first.response
    assert first.cold and not second.cold
    assert first.init_ms > 0 and first.invoke_ms > 0 and second.invoke_ms > 0
    assert first.init_ms == second.init_ms  # one environment, one init
    assert 20 < first.peak_rss_mb < 512


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
def test_handler_error_response_is_shown_as_is(tiny_task_root):
    with LocalFunction(tiny_task_root) as fn:
        result = fn.invoke({"url": "http://169.254.169.254/"})
    assert result.error is None  # the handler answered; it did not raise
    assert result.response["statusCode"] == 400 and "non-public" in result.response["error"]


def test_isolated_import_path_and_lambda_environment(probe_root):
    with LocalFunction(probe_root, RunSettings(memory_mb=256, timeout_s=7, env={"MY_SETTING": "on"}), handler="probe.env") as fn:
        result = fn.invoke({})
        assert result.error is None, result.error
        seen = result.response
    env, context = seen["env"], seen["context"]
    assert seen["cwd"] == str(probe_root.resolve())
    assert seen["path"][0] == str(probe_root.resolve())
    assert not any("site-packages" in p or ".venv" in p for p in seen["path"])
    assert seen["flags"] == [1, 1, 1]
    assert env["LAMBDA_TASK_ROOT"] == str(probe_root.resolve())
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == context["function_name"] == "lamb-local"
    assert env["AWS_REGION"] and env["_HANDLER"] == "probe.env"
    assert env["MY_SETTING"] == "on"
    assert not any(k.startswith(("AWS_ACCESS", "AWS_SECRET", "VIRTUAL_ENV", "PYTHON")) for k in env)
    assert context["memory_limit_in_mb"] == "256"  # a string, as in the real runtime
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"].endswith(":function:lamb-local")
    assert context["log_group_name"] == "/aws/lambda/lamb-local" and context["log_stream_name"]
    assert len(context["aws_request_id"]) == 36
    assert 5000 < context["remaining"] <= 7000


def test_host_packages_are_not_importable(probe_root):
    with LocalFunction(probe_root, handler="probe.can_import") as fn:
        assert fn.invoke({"module": "json"}).response is True
        assert fn.invoke({"module": "numpy"}).response is False  # installed in lamb's venv, not here
        assert fn.invoke({"module": "lamb"}).response is False


def test_tmp_is_writable_and_private(probe_root):
    with LocalFunction(probe_root, handler="probe.write_tmp") as fn:
        path = Path(fn.invoke({}).response)
        assert path.is_file() and probe_root not in path.parents
    assert not path.exists()  # the environment's /tmp goes with it


def test_logs_are_captured_per_invocation(probe_root):
    with LocalFunction(probe_root, handler="probe.echo") as fn:
        a = fn.invoke({"n": 1})
        b = fn.invoke({"n": 2})
    assert a.response == {"n": 1} and 'echo: {"n": 1}' in a.logs
    assert 'echo: {"n": 2}' in b.logs and '"n": 1' not in b.logs


def test_handler_exception_reported_like_lambda(probe_root):
    with LocalFunction(probe_root, handler="probe.boom") as fn:
        result = fn.invoke(5)
        assert result.response is None
        assert result.error["errorType"] == "ValueError"
        assert result.error["errorMessage"] == "bad thing 5"
        assert any("probe.py" in line and "boom" in line for line in result.error["stackTrace"])
        assert "Traceback" in result.logs
        again = fn.invoke(6)  # the environment survives a handler exception
    assert not again.cold and again.error["errorMessage"] == "bad thing 6"


def test_timeout_kills_and_next_invocation_is_cold(probe_root):
    with LocalFunction(probe_root, RunSettings(timeout_s=1), handler="probe.sleep") as fn:
        pid = fn.pid
        result = fn.invoke(30)
        assert result.error["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in result.error["errorMessage"]
        assert not alive(pid)
        after = fn.invoke(0)
    assert after.response == "woke" and after.cold


@pytest.mark.parametrize("handler, how", [("probe.exit3", "exit status 3"), ("probe.segfault", "SIGSEGV")])
def test_crash_reported_and_recovered(probe_root, handler, how):
    with LocalFunction(probe_root, handler=handler) as fn:
        result = fn.invoke({})
        assert result.error["errorType"] == "Runtime.ExitError"
        assert how in result.error["errorMessage"]
        assert fn.invoke({}).cold  # a new environment


def test_non_json_return_is_a_marshal_error(probe_root):
    with LocalFunction(probe_root, handler="probe.not_json") as fn:
        result = fn.invoke({})
    assert result.error["errorType"] == "Runtime.MarshalError"


def test_over_memory_is_killed(probe_root):
    with LocalFunction(probe_root, RunSettings(memory_mb=128), handler="probe.hog") as fn:
        result = fn.invoke(200)
        assert result.error["errorType"] == "Runtime.OutOfMemory"
        assert result.peak_rss_mb > 128
        assert fn.invoke(1).cold


@pytest.mark.parametrize(
    "handler, error_type",
    [("broken.handler", "Runtime.ImportModuleError"), ("syntax.f", "Runtime.UserCodeSyntaxError"),
     ("probe.missing", "Runtime.HandlerNotFound")],
)
def test_init_errors(probe_root, handler, error_type):
    with LocalFunction(probe_root, handler=handler) as fn:
        assert fn.init_error["errorType"] == error_type
        result = fn.invoke({})
    assert result.error["errorType"] == error_type and result.response is None
    assert result.init_ms is not None


def test_no_leftover_processes(probe_root):
    with LocalFunction(probe_root, handler="probe.spawn") as fn:
        leader = fn.pid
        grandchild = fn.invoke({}).response
        assert alive(leader) and alive(grandchild)
    assert not alive(leader)
    assert gone(grandchild)  # the whole session is killed


def test_ctrl_c_during_invoke_leaves_nothing(probe_root, sigint_raises):
    fn = LocalFunction(probe_root, RunSettings(timeout_s=30), handler="probe.sleep")
    fn.start()
    pid = fn.pid
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), fn:
        fn.invoke(30)
    assert time.monotonic() - started < 10
    assert not alive(pid)


def test_garbage_collected_function_kills_its_process(probe_root):
    import gc

    fn = LocalFunction(probe_root, handler="probe.echo")
    fn.start()
    pid = fn.pid
    del fn
    gc.collect()
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_bad_arguments(tmp_path, probe_root):
    with pytest.raises(InputError):
        LocalFunction(tmp_path / "nope")
    with pytest.raises(InputError):
        LocalFunction(probe_root, RunSettings(memory_mb=64))


def test_close_from_another_thread_ends_a_running_invocation(probe_root):
    fn = LocalFunction(probe_root, RunSettings(timeout_s=60), handler="probe.sleep")
    fn.start()
    pid = fn.pid
    results = []
    worker = threading.Thread(target=lambda: results.append(fn.invoke(60)))
    worker.start()
    time.sleep(0.5)
    started = time.monotonic()
    fn.close()
    worker.join(10)
    assert time.monotonic() - started < 5
    assert results and results[0].error["errorType"] == "Runtime.ExitError"
    assert not alive(pid)
