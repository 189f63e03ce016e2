"""A stand-in for the Lambda Python runtime's bootstrap, run by ``lamb.local.LocalFunction``.

Standard library only, and never shipped: ``LocalFunction`` copies this file to a temp folder
outside the task root and runs it as ``python -I -S bootstrap.py TASK_ROOT HANDLER IN_FD OUT_FD``,
so the handler's import path is the task root plus the standard library, as on Lambda.

Protocol (one JSON object per line): after importing the handler this writes
``{"type": "init", ...}`` to OUT_FD; then for every ``{"request_id", "event", "deadline_ms"}`` read
from IN_FD it writes ``{"type": "result", "request_id", "response" | "error", "invoke_ms",
"peak_rss_mb"}``. Errors look like the real runtime's (``errorMessage``, ``errorType``,
``stackTrace``). EOF on IN_FD, or the parent going away, ends the process.
"""

import importlib
import json
import os
import resource
import sys
import threading
import time
import traceback


def _peak_rss_mb():
    # VmHWM (peak RSS of this process image) rather than getrusage's ru_maxrss: Linux carries
    # ru_maxrss across exec, so a child of a large parent (lamb with TensorFlow loaded) would
    # report the parent's peak.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _error(exc, error_type=None, message=None):
    frames = traceback.extract_tb(exc.__traceback__)
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or exc.__class__.__name__,
        "stackTrace": traceback.format_list(frames),
    }


class LambdaContext:
    """The fields of the real runtime's context object (``awslambdaric.lambda_context``)."""

    def __init__(self, request_id, deadline_ms):
        env = os.environ
        self.aws_request_id = request_id
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = "arn:aws:lambda:%s:000000000000:function:%s" % (
            env.get("AWS_REGION", "us-east-1"),
            self.function_name,
        )
        # The real runtime passes the memory size as the environment's string, not an int.
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def __repr__(self):
        return "LambdaContext(aws_request_id=%r, function_name=%r)" % (self.aws_request_id, self.function_name)


def _watch_parent(parent):
    # If lamb dies without cleaning up (SIGKILL), a handler stuck in a loop would outlive it;
    # re-parenting is the signal to go.
    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="lamb-parent-watch", daemon=True).start()


def _send(out, message):
    out.write(json.dumps(message) + "\n")
    out.flush()


def _user_frames(error, task_root):
    # The runtime's own frames (this file, importlib) say nothing about the user's code.
    error["stackTrace"] = [f for f in error["stackTrace"] if f.lstrip().startswith('File "%s' % task_root)]
    return error


def _load(handler_spec, task_root):
    module_name, _, func_name = handler_spec.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        message = "Syntax error in module '%s': %s" % (module_name, exc)
        return None, _user_frames(_error(exc, "Runtime.UserCodeSyntaxError", message), task_root)
    except ImportError as exc:  # as awslambdaric reports it: the message, no stack trace
        message = "Unable to import module '%s': %s" % (module_name, exc)
        return None, {"errorMessage": message, "errorType": "Runtime.ImportModuleError", "stackTrace": []}
    except Exception as exc:  # noqa: BLE001 - the module raised while loading: awslambdaric reports the exception itself
        return None, _user_frames(_error(exc), task_root)
    handler = getattr(module, func_name, None)
    if handler is None:
        message = "Handler '%s' missing on module '%s'" % (func_name, module_name)
        return None, {"errorMessage": message, "errorType": "Runtime.HandlerNotFound", "stackTrace": []}
    return handler, None


def main():
    started = time.perf_counter()
    task_root, handler_spec, in_fd, out_fd = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    _watch_parent(os.getppid())
    sys.path.insert(0, task_root)
    os.chdir(task_root)
    out = os.fdopen(out_fd, "w", encoding="utf-8")
    inp = os.fdopen(in_fd, "r", encoding="utf-8")

    handler, init_error = _load(handler_spec, task_root)
    _send(out, {
        "type": "init",
        "init_ms": (time.perf_counter() - started) * 1000.0,
        "peak_rss_mb": _peak_rss_mb(),
        "error": init_error,
        "python": sys.version.split()[0],
    })
    if init_error is not None:
        return 1

    for line in inp:
        request = json.loads(line)
        context = LambdaContext(request["request_id"], request["deadline_ms"])
        message = {"type": "result", "request_id": request["request_id"]}
        t0 = time.perf_counter()
        try:
            result = handler(request["event"], context)
        except Exception as exc:  # noqa: BLE001 - the handler's error goes back to the caller, as on Lambda
            message["invoke_ms"] = (time.perf_counter() - t0) * 1000.0
            message["error"] = _error(exc)
            message["error"]["stackTrace"] = message["error"]["stackTrace"][1:]  # drop this file's frame
            traceback.print_exc()  # the runtime logs it too (CloudWatch)
        else:
            message["invoke_ms"] = (time.perf_counter() - t0) * 1000.0
            try:
                json.dumps(result)
                message["response"] = result
            except (TypeError, ValueError) as exc:  # what the runtime answers for a non-JSON return value
                message["error"] = {
                    "errorMessage": "Unable to marshal response: %s" % exc,
                    "errorType": "Runtime.MarshalError",
                    "stackTrace": [],
                }
        sys.stdout.flush()
        sys.stderr.flush()
        message["peak_rss_mb"] = _peak_rss_mb()
        _send(out, message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
