"""lamb serve: the Runtime Interface Emulator's endpoint over warm LocalFunction workers."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import TINY_LABELS

from lamb.local import RunSettings
from lamb.serve import LocalServer


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, grandchildren, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().split(")")[-1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def error_root(tmp_path):
    root = tmp_path / "task"
    root.mkdir()
    (root / "lambda_function.py").write_text(
        "def lambda_handler(event, context):\n"
        "    if event.get('fail'):\n"
        "        raise RuntimeError('asked to fail')\n"
        "    return {'echo': event}\n"
    )
    return root


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
def test_bounded_load_no_failures_no_leaks(tiny_task_root, png_bytes):
    event = {"image": base64.b64encode(png_bytes).decode()}
    with LocalServer(tiny_task_root, port=0, workers=2) as server:
        pids = [w.function.pid for w in server.workers]
        assert all(pids) and all(alive(pid) for pid in pids)
        with requests.Session() as session:
            def one(_):
                response = session.post(server.url, json=event, timeout=60)
                return response.status_code, response.json()

            with ThreadPoolExecutor(max_workers=8) as pool:  # 8 requests in flight at a time
                results = list(pool.map(one, range(200)))
    assert [status for status, _ in results] == [200] * 200
    assert all(list(body) == TINY_LABELS for _, body in results)
    assert len({json.dumps(body, sort_keys=True) for _, body in results}) == 1  # same image, same answer
    report = server.report
    assert report.requests == 200 and report.unhandled_errors == 0 and report.rejected == 0
    assert len(report.init_ms) == 2 and report.p50_ms <= report.p95_ms
    assert not any(alive(pid) for pid in pids)
    assert not [w for w in server.workers if w.is_alive()]


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
def test_course_style_client(tiny_task_root, image_server):
    with LocalServer(tiny_task_root, port=0, settings=RunSettings(env={"LAMB_ALLOW_PRIVATE_URLS": "1"})) as server:
        # what the course's test.py does against `docker run -p 9000:8080 ...`
        url = f"http://localhost:{server.port}/2015-03-31/functions/function/invocations"
        result = requests.post(url, json={"url": image_server + "/cat.png"}).json()
    assert list(result) == TINY_LABELS
    assert all(isinstance(v, float) for v in result.values())


def test_handler_errors_and_unhandled_errors(error_root):
    with LocalServer(error_root, port=0) as server:
        ok = requests.post(server.url, json={"a": 1})
        assert ok.status_code == 200 and ok.json() == {"echo": {"a": 1}}
        failed = requests.post(server.url, json={"fail": True})
        assert failed.status_code == 200  # as the emulator: the error is in the body and a header
        assert failed.headers["X-Amz-Function-Error"] == "Unhandled"
        assert failed.json()["errorType"] == "RuntimeError" and failed.json()["errorMessage"] == "asked to fail"
        again = requests.post(server.url, json={"b": 2})  # the worker survives
        assert again.json() == {"echo": {"b": 2}}
    assert server.report.unhandled_errors == 1 and server.report.requests == 3


def test_bad_requests_are_rejected_not_dropped(error_root):
    with LocalServer(error_root, port=0) as server:
        bad_json = requests.post(server.url, data=b"{not json", headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 400 and bad_json.json()["errorType"] == "InvalidRequestContentException"
        wrong_path = requests.post(server.url.replace("invocations", "nope"), json={})
        assert wrong_path.status_code == 404
        assert requests.get(server.url).status_code == 405
        too_big = requests.post(server.url, data=b"0" * (6 * 1024 * 1024 + 1))
        assert too_big.status_code == 413 and too_big.json()["errorType"] == "RequestEntityTooLargeException"
        # any function name works, as with the emulator; an empty body is an empty event
        named = requests.post(server.url.replace("/function/", "/my-func/"), data=b"")
        assert named.status_code == 200 and named.json() == {"echo": {}}
    assert server.report.rejected == 4


def raw_request(url: str, data: bytes, timeout: float = 10) -> tuple[bytes, float]:
    """Send ``data`` as is to the server behind ``url``; (everything it answered, seconds taken)."""
    host, port = url.split("/")[2].split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                head, _, body = answer.partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
    return answer, time.monotonic() - started


def test_a_body_shorter_than_its_content_length_times_out(error_root, monkeypatch):
    import lamb.serve.protocol

    monkeypatch.setattr(lamb.serve.protocol, "CLIENT_TIMEOUT_S", 1.0)
    with LocalServer(error_root, port=0) as server:
        path = server.url.split("/", 3)[3]
        answer, seconds = raw_request(server.url, f"POST /{path} HTTP/1.1\r\nHost: lamb\r\nContent-Length: 100\r\n\r\n{{}}".encode())
        assert answer.startswith(b"HTTP/1.1 408 ") and 0.9 < seconds < 5
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["errorType"] == "RequestTimeoutException"
        # a client trickling its body a byte at a time meets the same one deadline
        host, port = server.url.split("/")[2].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(f"POST /{path} HTTP/1.1\r\nHost: lamb\r\nContent-Length: 100\r\n\r\n".encode())
            started = time.monotonic()
            try:
                for _ in range(40):
                    conn.sendall(b" ")
                    time.sleep(0.1)
            except OSError:
                pass
            assert conn.recv(65536).startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 5
        assert requests.post(server.url, json={"after": 1}).json() == {"echo": {"after": 1}}


def test_deeply_nested_json_is_a_400_not_a_dropped_connection(error_root, capfd):
    with LocalServer(error_root, port=0) as server:
        for depth in (100_000, 5_000):
            answer = requests.post(server.url, data=b"[" * depth + b"]" * depth)
            assert answer.status_code == 400
            assert answer.json() == {"errorType": "InvalidRequestContentException", "errorMessage": "Could not parse request body into json: nested too deeply"}
        # just under json's own limit: parsed here, but too deep to pass on; refused by a bound well below it
        answer = requests.post(server.url, data=b"[" * 950 + b"]" * 950)
        assert answer.status_code == 400 and answer.json()["errorMessage"] == "the event nests deeper than 500 levels"
        deep_enough = '{"a":' * 500 + "1" + "}" * 500  # 500 levels: passed on
        assert requests.post(server.url, data=deep_enough).json() == {"echo": json.loads(deep_enough)}
        huge_int = requests.post(server.url, data=b'{"a": ' + b"9" * 5000 + b"}")
        assert huge_int.status_code == 400 and huge_int.json()["errorType"] == "InvalidRequestContentException"
        assert requests.post(server.url, json={"still": "serving"}).json() == {"echo": {"still": "serving"}}
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "GET", "HEAD", "BREW"])
def test_other_methods_answer_a_json_405(error_root, method):
    with LocalServer(error_root, port=0) as server:
        answer = requests.request(method, server.url, data=b"{}")
        assert answer.status_code == 405 and answer.headers["Content-Type"] == "application/json"
        assert answer.headers["Allow"] == "POST"
        if method == "HEAD":
            assert answer.content == b""
        else:
            assert answer.json()["errorType"] == "MethodNotAllowed" and method in answer.json()["errorMessage"]
        assert requests.request(method, server.url.replace("invocations", "nope")).status_code == 404
        assert requests.post(server.url, json={"a": 1}).json() == {"echo": {"a": 1}}  # the connection pool still works


def test_a_malformed_request_line_is_a_json_400(error_root):
    with LocalServer(error_root, port=0) as server:
        answer, _ = raw_request(server.url, b"THIS IS NOT HTTP\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["errorType"] == "InvalidRequestException"


def test_busy_port_is_a_clear_error(error_root):
    from lamb.errors import InputError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(InputError, match="cannot listen"):
            LocalServer(error_root, port=s.getsockname()[1]).start()



@pytest.mark.parametrize("port", [70000, -1])
def test_a_port_out_of_range_is_a_clear_error(error_root, port):
    from lamb.errors import InputError

    with pytest.raises(InputError, match=f"--port {port} is not a TCP port"):
        LocalServer(error_root, port=port)


@pytest.mark.e2e
@pytest.mark.parametrize("background", [False, True], ids=["ctrl-c", "background-job-sigterm"])
def test_cli_ctrl_c_leaves_no_process(tmp_path, error_root, sigint_raises, background):
    import zipfile

    artifact = tmp_path / "echo.zip"
    with zipfile.ZipFile(artifact, "w") as zf:
        zf.write(error_root / "lambda_function.py", "lambda_function.py")
    port = free_port()
    lamb = Path(sys.executable).with_name("lamb")
    command = [str(lamb), "serve", str(artifact), "--port", str(port), "--workers", "2"]
    if background:  # as `lamb serve &` in a script: the shell starts it with SIGINT ignored
        command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
        deadline = time.monotonic() + 60
        while True:
            try:
                assert requests.post(url, json={"hi": 1}, timeout=5).json() == {"echo": {"hi": 1}}
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.2)
        workers = descendants(proc.pid)
        assert len(workers) >= 2
        if background:
            proc.send_signal(signal.SIGINT)  # ignored, as Ctrl-C would be: SIGTERM is what stops it
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        proc.send_signal(signal.SIGTERM if background else signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "1 requests" in out and "no processes left" in out
    assert not [pid for pid in workers if alive(pid)]


def test_default_port_is_the_courses_8080():
    """The course ran `docker run -p 8080:8080` and its test.py posts to localhost:8080."""
    import inspect

    import lamb.serve.protocol
    from lamb.cli.artifact import serve

    assert lamb.serve.DEFAULT_PORT == 8080
    assert inspect.signature(serve).parameters["port"].default.default == lamb.serve.DEFAULT_PORT


@pytest.mark.parametrize("length", ["²", "9" * 5000, "-1", "12x", "١٢", "0x10", ""])
def test_a_content_length_that_is_not_a_byte_count_is_a_json_400(error_root, capfd, length):
    with LocalServer(error_root, port=0) as server:
        path = server.url.split("/", 3)[3]
        answer, _ = raw_request(server.url, f"POST /{path} HTTP/1.1\r\nHost: lamb\r\nContent-Length: {length}\r\n\r\n{{}}".encode())
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["errorType"] == "InvalidRequestException"
        assert requests.post(server.url, json={"a": 1}).json() == {"echo": {"a": 1}}
    assert "Traceback" not in capfd.readouterr().err


def test_request_line_and_headers_share_one_deadline(error_root, monkeypatch):
    import lamb.serve.protocol

    monkeypatch.setattr(lamb.serve.protocol, "CLIENT_TIMEOUT_S", 1.0)
    with LocalServer(error_root, port=0) as server:
        path = server.url.split("/", 3)[3]
        host, port = server.url.split("/")[2].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            started = time.monotonic()
            conn.sendall(f"POST /{path} HTTP/1.1\r\nHost: lamb\r\n".encode())
            closed = False
            for _ in range(50):  # a header byte every 0.2 s: each byte alone is well inside the timeout
                try:
                    conn.sendall(b"X")
                except OSError:
                    closed = True
                    break
                time.sleep(0.2)
                conn.setblocking(False)
                try:
                    if conn.recv(1) == b"":
                        closed = True
                        break
                except BlockingIOError:
                    pass
                finally:
                    conn.setblocking(True)
            assert closed and time.monotonic() - started < 3
        assert requests.post(server.url, json={"after": 1}).json() == {"echo": {"after": 1}}


def test_chunked_bodies_are_accepted_within_the_same_limits(error_root, capfd):
    from lamb.handler.lambkit.settings import MAX_PAYLOAD_BYTES

    with LocalServer(error_root, port=0) as server:
        ok = requests.post(server.url, data=iter([b'{"a": ', b'[1, 2', b', 3]}']))  # a generator: requests sends it chunked
        assert ok.status_code == 200 and ok.json() == {"echo": {"a": [1, 2, 3]}}
        path = server.url.split("/", 3)[3]
        head = f"POST /{path} HTTP/1.1\r\nHost: lamb\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        with_ext_and_trailer = head + b"2;name=x\r\n{}\r\n0\r\nX-Trailer: 1\r\n\r\n"
        answer, _ = raw_request(server.url, with_ext_and_trailer)
        assert answer.startswith(b"HTTP/1.1 200 ") and json.loads(answer.partition(b"\r\n\r\n")[2]) == {"echo": {}}
        piece = 1 << 20
        too_big = head + (f"{piece:x}\r\n".encode() + b" " * piece + b"\r\n") * (MAX_PAYLOAD_BYTES // piece + 1) + b"0\r\n\r\n"
        answer, _ = raw_request(server.url, too_big)
        assert answer.startswith(b"HTTP/1.1 413 ")
        for bad in (b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n", b"1" * 5000 + b"\r\n"):
            answer, _ = raw_request(server.url, head + bad)
            assert answer.startswith(b"HTTP/1.1 400 "), (bad[:20], answer[:100])
        both = f"POST /{path} HTTP/1.1\r\nHost: lamb\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n".encode()
        answer, _ = raw_request(server.url, both)
        assert answer.startswith(b"HTTP/1.1 400 ") and b"not both" in answer
        assert requests.post(server.url, json={"still": 1}).json() == {"echo": {"still": 1}}
    assert "Traceback" not in capfd.readouterr().err


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().split(")")[-1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_out_of_file_descriptors_answers_503_and_recovers(error_root, tmp_path):
    """RLIMIT_NOFILE lowered to what serve holds plus a few: new connections beyond it get a
    503 (not a hang, not a spinning loop, not a crash), and serving resumes once fds free up."""
    script = tmp_path / "serve_few_fds.py"
    script.write_text(
        "import os, resource, sys, time\n"
        "from lamb.serve import LocalServer\n"
        f"with LocalServer({str(error_root)!r}, port=0) as server:\n"
        "    held = len(os.listdir('/proc/self/fd'))\n"
        "    resource.setrlimit(resource.RLIMIT_NOFILE, (held + 4, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "    print(server.port, flush=True)\n"
        "    sys.stdin.read()\n"
        "    print(server.report.requests, server.report.rejected, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    held: list[socket.socket] = []
    try:
        port = int(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
        statuses = []
        for _ in range(8):  # keep-alive connections, each holding one of serve's fds
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            held.append(conn)
            conn.sendall(b"POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: lamb\r\nContent-Length: 2\r\n\r\n{}")
            statuses.append(conn.recv(65536).split(b" ", 2)[1])
        assert b"200" in statuses and b"503" in statuses, statuses
        before = cpu_ticks(proc.pid)
        time.sleep(1.0)
        assert proc.poll() is None
        assert cpu_ticks(proc.pid) - before < os.sysconf("SC_CLK_TCK") // 4  # idle, not spinning on accept()
        for conn in held:
            conn.close()
        held.clear()
        deadline = time.monotonic() + 10
        while True:  # the server notices the closed connections, then has fds again
            answer = requests.post(url, json={"back": 1}, timeout=10)
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.json() == {"echo": {"back": 1}}
        out, err = proc.communicate("", timeout=30)
    finally:
        for conn in held:
            conn.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    requests_served, rejected = map(int, out.split()[-2:])
    assert requests_served >= 2 and rejected >= 1


@pytest.mark.e2e
@pytest.mark.parametrize("sleep_s, finished", [(0.5, True), (60, False)], ids=["finishes", "fails-cleanly"])
def test_sigterm_during_a_request(tmp_path, sleep_s, finished):
    """SIGTERM while a request runs: a short one finishes and is answered, a long one is answered
    with the runtime's exit error; serve exits 0 and leaves no process behind."""
    import threading
    import zipfile

    artifact = tmp_path / "slow.zip"
    with zipfile.ZipFile(artifact, "w") as zf:
        zf.writestr("lambda_function.py", "import time\ndef lambda_handler(event, context):\n    time.sleep(event['s'])\n    return {'slept': event['s']}\n")
    port = free_port()
    lamb = Path(sys.executable).with_name("lamb")
    proc = subprocess.Popen([str(lamb), "serve", str(artifact), "--port", str(port), "--timeout", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
    answers: list = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.post(url, json={"s": 0}, timeout=5)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.2)
        workers = descendants(proc.pid)
        client = threading.Thread(target=lambda: answers.append(requests.post(url, json={"s": sleep_s}, timeout=30)))
        client.start()
        time.sleep(0.2)  # the request is being run
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        client.join(timeout=10)
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert not [pid for pid in workers if alive(pid)]
    assert len(answers) == 1 and answers[0].status_code == 200
    if finished:
        assert answers[0].json() == {"slept": sleep_s}
    else:
        assert answers[0].headers["X-Amz-Function-Error"] == "Unhandled"
        assert answers[0].json()["errorType"] == "Runtime.ExitError"


def test_an_environment_that_cannot_restart_for_want_of_fds_is_a_503_not_a_dead_worker(tmp_path):
    """After a crash the worker starts a new environment (pipes, a process): out of descriptors
    that fails; the request gets a JSON 503 and the worker lives on to answer the next one."""
    root = tmp_path / "task"
    root.mkdir()
    (root / "lambda_function.py").write_text(
        "import os\ndef lambda_handler(event, context):\n    if event.get('crash'):\n        os._exit(3)\n    return {'ok': 1}\n")
    script = tmp_path / "serve_no_restart.py"
    script.write_text(
        "import os, resource, sys\n"
        "from lamb.serve import LocalServer\n"
        f"with LocalServer({str(root)!r}, port=0) as server:\n"
        "    held = len(os.listdir('/proc/self/fd'))\n"
        "    resource.setrlimit(resource.RLIMIT_NOFILE, (held + 2, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "    print(server.port, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        path = "/2015-03-31/functions/function/invocations"

        def post(body: bytes) -> tuple[bytes, dict]:
            with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
                conn.sendall(f"POST {path} HTTP/1.1\r\nHost: lamb\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
                answer = b""
                while chunk := conn.recv(65536):
                    answer += chunk
            head, _, payload = answer.partition(b"\r\n\r\n")
            return head.split(b" ", 2)[1], json.loads(payload)

        status, crashed = post(b'{"crash": true}')
        assert status == b"200" and crashed["errorType"] == "Runtime.ExitError"
        for _ in range(2):  # each later request: the restart fails, answered 503, the worker still there
            status, answer = post(b"{}")
            assert status == b"503" and answer["errorType"] == "ServiceUnavailable", answer
        assert proc.poll() is None
        _, err = proc.communicate("", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err


def courses_test_py(folder: Path, port: int) -> Path:
    """The course's test.py, verbatim in shape (its port 8080 unless a test needs another)."""
    path = folder / "test.py"
    path.write_text(
        "import requests\n"
        f"url = 'http://localhost:{port}/2015-03-31/functions/function/invocations'\n"
        "data = {'url': 'http://bit.ly/mlbookcamp-pants'}\n"
        "result = requests.post(url, json=data).json()\n"
        "print(result)\n"
    )
    return path


@pytest.mark.e2e
def test_the_courses_test_py_works_unchanged_against_lamb_serve_with_no_port(tmp_path, error_root):
    """The course's test.py, as written for `docker run -p 8080:8080`, against `lamb serve` with no --port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8080))
        except OSError:
            pytest.skip("port 8080 is taken on this machine")
    out = course_client_against_serve(tmp_path, error_root, 8080, [])
    assert "127.0.0.1:8080" in out


def course_client_against_serve(tmp_path: Path, root: Path, port: int, options: list[str]) -> str:
    """Start `lamb serve` on ``root``'s handler zipped, run the course's test.py once as soon as it
    says it listens, check the answer, stop it with SIGTERM; returns what lamb printed."""
    import zipfile

    artifact = tmp_path / "function.zip"
    with zipfile.ZipFile(artifact, "w") as zf:
        zf.write(root / "lambda_function.py", "lambda_function.py")
    test_py = courses_test_py(tmp_path, port)
    lamb = Path(sys.executable).with_name("lamb")
    proc = subprocess.Popen([str(lamb), "serve", str(artifact), *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("listening on"), first + proc.stdout.read()
        client = subprocess.run([sys.executable, str(test_py)], capture_output=True, text=True, timeout=60, check=False)
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == str({"echo": {"url": "http://bit.ly/mlbookcamp-pants"}})
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "ready: serving" in out and "1 requests" in out, out
    return first + out


def exchange(url: str, data: bytes, timeout: float = 10) -> list[bytes]:
    """Send ``data`` as is, read until the server closes; the status lines it answered, in order."""
    host, port = url.split("/")[2].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):  # a timeout here means the connection was kept open
            answer += chunk
    return re.findall(rb"HTTP/1\.[01] [0-9]{3} [^\r]*", answer)  # each answer's status line (bodies end without a newline)


INVOKE = "POST /2015-03-31/functions/function/invocations"
SMUGGLED = f'{INVOKE} HTTP/1.1\r\nHost: lamb\r\nContent-Length: 14\r\nConnection: close\r\n\r\n{{"fail": true}}'.encode()


@pytest.mark.parametrize("head, body, status", [
    # two lengths: read as 2 today, so the rest of the 'body' ran as a second request
    ("Content-Length: 2\r\nContent-Length: {n}", b"{}", b"400"),
    ("Content-Length: 2, {n}", b"{}", b"400"),
    # not chunked: a substring match read it as chunked
    ("Transfer-Encoding: xchunked", b"2\r\n{}\r\n0\r\n\r\n", b"400"),
    ("Transfer-Encoding: chunked, gzip", b"2\r\n{}\r\n0\r\n\r\n", b"400"),
    ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", b"2\r\n{}\r\n0\r\n\r\n", b"400"),
    ("Transfer-Encoding: chunked\r\nContent-Length: {n}", b"2\r\n{}\r\n0\r\n\r\n", b"400"),
    # a coding lamb serve does not implement, before chunked
    ("Transfer-Encoding: gzip, chunked", b"2\r\n{}\r\n0\r\n\r\n", b"501"),
    ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", b"2\r\n{}\r\n0\r\n\r\n", b"501"),
    # chunk lines end in CRLF only: a bare LF is read one way here and another by a proxy
    ("Transfer-Encoding: chunked", b"2\n{}\r\n0\r\n\r\n", b"400"),
    ("Transfer-Encoding: chunked", b"2\r\n{}\r\n0\n\n", b"400"),
])
def test_ambiguous_framing_is_refused_and_the_connection_closed(error_root, capfd, head, body, status):
    """RFC 9112 6.3: a body whose end is ambiguous is a 400 and a close, never a smuggled second request."""
    with LocalServer(error_root, port=0) as server:
        rest = body + SMUGGLED
        request = f"{INVOKE} HTTP/1.1\r\nHost: lamb\r\n{head.format(n=len(rest))}\r\n\r\n".encode() + rest
        answers = exchange(server.url, request)
        assert len(answers) == 1 and answers[0].split()[1] == status, answers
        assert requests.post(server.url, json={"after": 1}).json() == {"echo": {"after": 1}}
    assert server.report.rejected == 1 and server.report.unhandled_errors == 0
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("head", ["Content-Length : 2", "Content-Length: 2\r\nX-Folded: a\r\n b", "Bad Header\r\nContent-Length: 2"])
def test_a_header_line_that_is_not_name_colon_value_is_a_400(error_root, head):
    """RFC 9112 5.1, 5.2: whitespace before the colon, a line with no colon, a folded line."""
    with LocalServer(error_root, port=0) as server:
        answers = exchange(server.url, f"{INVOKE} HTTP/1.1\r\nHost: lamb\r\n{head}\r\n\r\n{{}}".encode() + SMUGGLED)
        assert [a.split()[1] for a in answers] == [b"400"], answers


@pytest.mark.parametrize("version, hosts, status", [
    ("HTTP/1.1", [], b"400"),  # RFC 9112 3.2: an HTTP/1.1 request without Host
    ("HTTP/1.1", ["lamb", "evil.example"], b"400"),  # two: which one a proxy routed by is anyone's guess
    ("HTTP/1.1", ["lamb, evil.example"], b"400"),
    ("HTTP/1.1", ["evil.example/x"], b"400"),
    ("HTTP/1.1", ["user@lamb"], b"400"),
    ("HTTP/1.1", ["lamb:80:80"], b"400"),
    ("HTTP/1.1", ["127.0.0.1:8080"], b"200"),
    ("HTTP/1.1", ["[::1]:8080"], b"200"),
    ("HTTP/1.1", [""], b"200"),  # a target without an authority sends Host empty
    ("HTTP/1.0", [], b"200"),  # HTTP/1.0 had no Host
])
def test_a_request_needs_one_valid_host(error_root, version, hosts, status):
    with LocalServer(error_root, port=0) as server:
        head = "".join(f"Host: {h}\r\n" for h in hosts)
        answers = exchange(server.url, f"{INVOKE} {version}\r\n{head}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}".encode())
        assert [a.split()[1] for a in answers] == [status], answers
    assert server.report.unhandled_errors == 0


@pytest.mark.parametrize("request_line", ["GET /2015-03-31/functions/function/invocations", "POST /elsewhere", "GET /", "GET /lamb/status"])
def test_a_body_left_unread_is_not_read_as_the_next_request(error_root, request_line):
    with LocalServer(error_root, port=0) as server:
        request = f"{request_line} HTTP/1.1\r\nHost: lamb\r\nContent-Length: {len(SMUGGLED)}\r\n\r\n".encode() + SMUGGLED
        answers = exchange(server.url, request)
        assert len(answers) == 1 and answers[0].split()[1] in (b"200", b"404", b"405"), answers
    assert server.report.unhandled_errors == 0


def test_well_framed_requests_share_a_connection(error_root):
    with LocalServer(error_root, port=0) as server:
        same_length_twice = f"{INVOKE} HTTP/1.1\r\nHost: lamb\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{{}}".encode()
        chunked_in_capitals = f"{INVOKE} HTTP/1.1\r\nHost: lamb\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n".encode()
        answers = exchange(server.url, same_length_twice + chunked_in_capitals + SMUGGLED)
        assert [a.split()[1] for a in answers] == [b"200", b"200", b"200"]
        assert exchange(server.url, f"{INVOKE} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n".encode()) == [b"HTTP/1.1 400 Bad Request"]
    assert server.report.unhandled_errors == 1  # the one smuggled-looking request that was sent well framed


@pytest.fixture
def slow_init_root(tmp_path):
    """A handler whose init (import) takes 1.5 s, as a model load does."""
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "lambda_function.py").write_text("import time\ntime.sleep(1.5)\n\ndef lambda_handler(event, context):\n    return {'echo': event}\n")
    return tmp_path / "slow"


def test_a_request_before_the_function_is_loaded_is_answered_once_it_is(slow_init_root):
    server = LocalServer(slow_init_root, port=0)
    server.listen()  # answers from now on
    try:
        status = requests.get(server.page_url + "lamb/status", timeout=10).json()
        assert status["ready"] is False and status["init_ms"] == []
        with ThreadPoolExecutor(1) as pool:
            early = pool.submit(requests.post, server.url, json={"early": 1}, timeout=60)
            time.sleep(0.3)
            assert not early.done()  # waiting for the function, not refused
            server.load()
            assert early.result().json() == {"echo": {"early": 1}}
        assert requests.get(server.page_url + "lamb/status", timeout=10).json()["ready"] is True
    finally:
        server.close()


def test_a_request_waiting_when_serve_stops_before_loading_is_answered_503(slow_init_root):
    server = LocalServer(slow_init_root, port=0)
    server.listen()
    with ThreadPoolExecutor(1) as pool:
        early = pool.submit(requests.post, server.url, json={}, timeout=60)
        time.sleep(0.3)
        server.close()
        answer = early.result()
    assert answer.status_code == 503 and "stopped before the function was loaded" in answer.json()["errorMessage"]


@pytest.mark.e2e
def test_the_courses_test_py_right_after_serve_starts_gets_an_answer(tmp_path, slow_init_root):
    """The course's test.py, run as soon as `lamb serve` says it listens (the function still loading)."""
    port = free_port()
    course_client_against_serve(tmp_path, slow_init_root, port, ["--port", str(port)])


def test_the_session_ends_with_the_advice_invoke_deploy_and_the_image_readme_state(error_root):
    from lamb.cost import MB_PER_VCPU, advise_function
    from lamb.serve.render import render

    with LocalServer(error_root, port=0) as server:
        for i in range(3):
            assert requests.post(server.url, json={"i": i}, timeout=10).status_code == 200
    advice = server.report.advice
    answered = server._answered
    expected = advise_function(sorted(r.invoke_ms for r in answered[1:])[0], init_ms=answered[0].init_ms,
                               peak_rss_mb=max(r.peak_rss_mb for r in answered), first_invoke_ms=answered[0].invoke_ms)
    assert (advice.memory_mb, advice.timeout_s) == (expected.memory_mb, expected.timeout_s)
    assert advice.memory_mb == MB_PER_VCPU and "only the vCPU share buys speed" in advice.memory.reason  # an echo needs 128 MB
    assert f"advice from the requests served: memory {MB_PER_VCPU:,} MB, timeout {advice.timeout_s} s" in " ".join(render(server.report))
