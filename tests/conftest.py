"""Shared fixtures. Small real models, real files under tmp dirs; no mocked TensorFlow.

Sections are owned by area (convert / verify / package / invoke); add fixtures to your own section.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

# Before anything imports TensorFlow: keep its C++ log noise out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest

# -- shared ------------------------------------------------------------------------------------


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt here, and is not ignored in child processes, for this test.

    A shell starts a background job (``pytest &`` in a script) with SIGINT ignored, and Python
    then keeps it ignored: a test that sends itself (or its child) SIGINT must install the handler
    it relies on."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

# A real full disk and a real read-only folder: a tmpfs mounted for the test (root only: mount(2)).
# Root writes through a folder's permission bits, so a read-only mount is the only read-only folder.


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a fresh 512 KB tmpfs: a write past that fails with ENOSPC. ``remount_read_only``
    makes it read-only. Skipped where this process cannot mount one (not root)."""
    import subprocess

    folder = tmp_path / "small_disk"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def terminate_while(args, tmpdir, ready):
    """``lamb ARGS`` in a fresh process with TMPDIR=``tmpdir``, sent SIGTERM as soon as ``ready()``
    (polled every 5 ms, for up to 300 s): (exit code, what it printed). SIGTERM is how a CI
    runner's timeout or ``kill`` stops lamb."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", "from lamb.cli import app; app()", *map(str, args)],
                            env={**os.environ, "TMPDIR": str(tmpdir)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert ready(), "SIGTERM must come while the step is under way"
    proc.send_signal(signal.SIGTERM)
    said = proc.communicate(timeout=120)[0]
    return proc.returncode, said


def remount_read_only(folder):
    """``small_disk``'s folder, as it is, made read-only."""
    import subprocess

    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
    return folder


# -- target facts --------------------------------------------------------------------------
# What `lamb probe` measured lives in lamb's cache and outranks the documented facts: every test
# gets an empty store of its own, so a measurement on the developer's machine changes no verdict.


@pytest.fixture(autouse=True)
def _own_probe_store(tmp_path_factory, monkeypatch):
    import lamb.measured

    store = tmp_path_factory.mktemp("probe")
    monkeypatch.setattr(lamb.measured, "probe_dir", lambda: store)
    monkeypatch.setattr(lamb.measured, "learned_dir", lambda: store / "learned")
    return store


# -- handler -----------------------------------------------------------------------------------
# Hypothesis profiles for tests/test_handler_fuzz.py: a few seconds by default (CI), longer on
# demand with LAMB_FUZZ_PROFILE=lamb-long or pytest --hypothesis-profile=lamb-long.

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "lamb-ci", max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("lamb-long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("LAMB_FUZZ_PROFILE", "lamb-ci"))

# -- convert -----------------------------------------------------------------------------------
# Tiny real models (seconds to build) and their conversions, shared by every area's tests.

TINY_LABELS = ["cat", "dog", "bird", "fish"]


def build_tiny_classifier():
    """A small Keras 3 CNN: 32x32 RGB in, 4-class logits out, seeded weights."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_classifier")


@pytest.fixture(scope="session")
def tiny_classifier_h5(tmp_path_factory):
    """Path of the tiny Keras 3 classifier saved as .h5 (session-wide; do not modify it)."""
    path = tmp_path_factory.mktemp("tiny_model") / "tiny.h5"
    build_tiny_classifier().save(path)
    return path


@pytest.fixture(scope="session")
def tf_keras_preprocess_h5(tmp_path_factory):
    """A Keras-2 (tf_keras) .h5 with ``xception.preprocess_input`` inside its graph (TFOpLambda
    layers), the shape of most course models: Keras 3 cannot read it, lamb falls back to tf_keras.
    32x32 RGB in (raw [0, 255] pixels), 4-class logits out."""
    import tensorflow as tf
    import tf_keras

    tf.random.set_seed(0)
    inputs = tf_keras.Input((32, 32, 3), name="image")
    x = tf_keras.applications.xception.preprocess_input(inputs)
    x = tf_keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf_keras.layers.Dense(4, name="logits")(x)
    path = tmp_path_factory.mktemp("tf_keras_model") / "course.h5"
    tf_keras.Model(inputs, outputs, name="course_model").save(path)
    return path


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory):
    """A folder of 12 small seeded RGB PNG/JPEG images of varied sizes (calibration, verify, invoke)."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("sample_images")
    rng = np.random.default_rng(0)
    for i in range(12):
        h, w = (32, 32) if i % 3 == 0 else (40 + 4 * i, 48 + 2 * i)
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / (f"img_{i:02d}.png" if i % 2 else f"img_{i:02d}.jpg"))
    return folder


@pytest.fixture(scope="session")
def converted_tiny(tiny_classifier_h5, tmp_path_factory):
    """``lamb.convert.convert_model`` on the tiny classifier: float32, preprocess "xception",
    labels ``TINY_LABELS``. Returns the ConversionResult; its files live in a session temp dir."""
    from lamb.convert import convert_model

    out = tmp_path_factory.mktemp("converted_tiny") / "tiny.tflite"
    return convert_model(tiny_classifier_h5, out, preprocess="xception", labels=list(TINY_LABELS))

# -- accuracy ----------------------------------------------------------------------------------

DEMO = Path(__file__).resolve().parent.parent / "models" / "demo"


@pytest.fixture(scope="session")
def drawn_demo_images(tmp_path_factory):
    """100 labelled images (20 per class) drawn by models/make_demo.py from a seed its training and
    bundled samples never used, named like the bundled samples: ``<label>-<n>.png`` (under a second)."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("make_demo", DEMO.parent / "make_demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    folder = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(demo.SEED + 3)
    for label in demo.LABELS:
        for n in range(1, 21):
            demo.draw_garment(label, rng).save(folder / f"{label}-{n}.png")
    return folder


@pytest.fixture(scope="session")
def converted_tiny_onnx(tiny_classifier_h5, tmp_path_factory):
    """``convert_model`` on the tiny classifier for onnxruntime (tf2onnx): float32, preprocess
    "xception", labels ``TINY_LABELS``. Returns the ConversionResult (tiny.onnx + tiny.lamb.json)."""
    from lamb.convert import convert_model

    out = tmp_path_factory.mktemp("converted_tiny_onnx") / "tiny.onnx"
    return convert_model(tiny_classifier_h5, out, preprocess="xception", labels=list(TINY_LABELS), runtime_lib_name="onnxruntime")

def build_nchw_onnx(folder, name="model.onnx", size=32):
    """The course's 2025 homework shape, small: a channel-first (N, 3, H, W) conv net exported to
    ONNX with its weights in an external ``<name>.data`` (a few KB), as ``torch.onnx.export``
    writes it. Built with ``onnx.helper``; seeded. Returns the .onnx path."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save_model

    rng = np.random.default_rng(0)
    weights = {
        "conv.weight": rng.normal(0, 0.3, (8, 3, 3, 3)), "conv.bias": rng.normal(0, 0.1, (8,)),
        "fc.weight": rng.normal(0, 0.5, (4, 8)), "fc.bias": rng.normal(0, 0.1, (4,)),
    }
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    nodes = [
        helper.make_node("Conv", ["pixel_values", "conv.weight", "conv.bias"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], transB=1),
    ]
    x = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, size, size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])
    model = helper.make_model(helper.make_graph(nodes, "tiny_torch_like", [x], [y], initializers),
                              opset_imports=[helper.make_opsetid("", 18)], producer_name="pytorch", producer_version="2.9")
    model.ir_version = 9
    path = folder / name
    save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
               location=f"{name}.data", size_threshold=0)
    return path


@pytest.fixture
def nchw_onnx(tmp_path):
    """A fresh copy of ``build_nchw_onnx`` in its own folder (model.onnx + model.onnx.data)."""
    folder = tmp_path / "exported"
    folder.mkdir()
    return build_nchw_onnx(folder)

def build_nested_if_onnx(path, depth=30):
    """A tiny NHWC model (8x8x3 in, 2 scores out) whose scores come through ``If`` nodes nested
    ``depth`` deep (each then-branch holds the next level, each else-branch is the input itself).
    onnxruntime 1.32 loads it in 0.02 s at depth 30; onnxruntime 1.16.3 (what python3.11 ships)
    takes time growing exponentially with the depth (0.16 s at 10, 1.37 s at 14). Returns ``path``."""
    from onnx import TensorProto, helper, save_model

    def value(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 8, 8, 3])

    def level(n):
        if n == 0:
            return helper.make_graph([helper.make_node("Identity", ["x"], ["y0"])], "y0", [], [value("y0")])
        plain = helper.make_graph([helper.make_node("Identity", ["x"], [f"e{n}"])], f"e{n}", [], [value(f"e{n}")])
        node = helper.make_node("If", ["cond"], [f"y{n}"], then_branch=level(n - 1), else_branch=plain)
        return helper.make_graph([node], f"y{n}", [], [value(f"y{n}")])

    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["cond"]),
        *level(depth).node,
        helper.make_node("ReduceMean", [f"y{depth}"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("Slice", ["mean", "starts", "ends", "axes"], ["scores"]),
    ]
    constants = [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])] + [
        helper.make_tensor(name, TensorProto.INT64, [1], [v]) for name, v in (("starts", 0), ("ends", 2), ("axes", 1))]
    graph = helper.make_graph(nodes, "nested_if", [value("x")], [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])],
                              constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save_model(model, str(path))
    return path


# -- compare -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_timing():
    """Fewer timed requests than a real comparison: the figures are checked for shape, not speed."""
    from lamb.compare import timing

    saved = timing.COLD_STARTS, timing.MIN_WARM_RUNS, timing.MIN_WARM_SECONDS
    timing.COLD_STARTS, timing.MIN_WARM_RUNS, timing.MIN_WARM_SECONDS = 2, 5, 0.0
    yield
    timing.COLD_STARTS, timing.MIN_WARM_RUNS, timing.MIN_WARM_SECONDS = saved


# -- invoke ------------------------------------------------------------------------------------
# Task roots laid out like an unpacked artifact (handler + model.tflite + lamb.json + the runtime
# dependencies installed for this machine's Lambda target), so handler/local/invoke/serve tests
# run before, and independently of, `lamb package`.


def make_task_root(root, conversion, deps=None):
    """Assemble a task root in ``root`` from a ConversionResult; ``deps``: a folder of installed
    packages to expose (symlinked entry by entry, so a session-wide install is reused)."""
    import dataclasses
    import shutil
    from pathlib import Path

    from lamb import layout
    from lamb import manifest as mf

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    handler = Path(__file__).parent.parent / "lamb" / "handler"
    shutil.copy2(handler / layout.HANDLER_FILE, root)
    shutil.copytree(handler / layout.HANDLER_PACKAGE, root / layout.HANDLER_PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(conversion.model_path, root / "model.tflite")
    mf.write(dataclasses.replace(conversion.manifest, model=dataclasses.replace(conversion.manifest.model, file="model.tflite")), root / layout.MANIFEST_FILE)
    if deps is not None:
        for entry in Path(deps).iterdir():
            if entry.name not in ("bin", "__pycache__"):
                (root / entry.name).symlink_to(entry)
    return root


@pytest.fixture(scope="session")
def host_runtime_deps(tmp_path_factory, converted_tiny):
    """NumPy, Pillow and the runtime library `lamb package` would pick for this machine's Lambda
    target, installed with ``lamb.release.wheels.install_for_target`` (wheels cached across runs)."""
    from lamb.release import lib_choice
    from lamb.release.slim import slim
    from lamb.release.wheels import install_for_target
    from lamb.targets import host_target

    target = host_target()
    if target is None:
        pytest.skip("this machine's Python/arch is not a Lambda runtime; no host task root can run")
    choice = lib_choice.resolve(target, converted_tiny.manifest, purpose=lib_choice.TAGGED).choice
    dest = tmp_path_factory.mktemp("runtime_deps")
    install_for_target([*choice.requirements, "numpy", "pillow"], target, dest)
    slim(dest)  # as `lamb package` ships them: proves the handler needs nothing slimming removes
    return dest


@pytest.fixture(scope="session")
def tiny_task_root(tmp_path_factory, converted_tiny, host_runtime_deps):
    """A runnable task root for the tiny classifier (session-wide; do not modify it)."""
    return make_task_root(tmp_path_factory.mktemp("tiny_task_root"), converted_tiny, host_runtime_deps)


@pytest.fixture(scope="session")
def png_bytes():
    """A 48x40 RGB PNG (varied pixels) as bytes."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def image_server(png_bytes):
    """A local ``http.server`` on 127.0.0.1 serving ``/cat.png`` (and a few misbehaving paths);
    yields its base URL. Loopback: the handler needs LAMB_ALLOW_PRIVATE_URLS=1 to reach it."""
    import http.server
    import threading
    import time

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/cat.png":
                self._send(200, png_bytes, {"Content-Type": "image/png", "Content-Length": str(len(png_bytes))})
            elif self.path == "/big-no-length":  # streamed without Content-Length
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                self.close_connection = True
                for _ in range(64):
                    self.wfile.write(b"\0" * 16384)
            elif self.path == "/text":
                self._send(200, b"hello, not an image", {"Content-Type": "text/plain", "Content-Length": "19"})
            elif self.path == "/slow":
                time.sleep(3)
                self._send(200, png_bytes, {"Content-Length": str(len(png_bytes))})
            elif self.path.startswith("/redirect?to="):
                self._send(302, b"", {"Location": self.path.split("=", 1)[1], "Content-Length": "0"})
            elif self.path == "/loop":
                self._send(302, b"", {"Location": "/loop", "Content-Length": "0"})
            else:
                self._send(404, b"no", {"Content-Length": "2"})

        def _send(self, status, body, headers):
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- package -----------------------------------------------------------------------------------
# Real wheels from the index, resolved once per session for one python3.12 and one python3.11
# target (the download cache, ~/.cache/lamb or $LAMB_CACHE_DIR, makes later sessions offline).


@pytest.fixture(scope="session")
def verified_tiny(tmp_path_factory, converted_tiny):
    """A folder with tiny.tflite + tiny.lamb.json that `lamb verify` passed (session-wide; copy it
    with ``verified_copy`` before changing anything). Returns the manifest path."""
    import shutil

    from lamb.verify import verify_model

    folder = tmp_path_factory.mktemp("verified_tiny")
    shutil.copy2(converted_tiny.model_path, folder / "tiny.tflite")
    shutil.copy2(converted_tiny.manifest_path, folder / "tiny.lamb.json")
    report = verify_model(manifest_path=folder / "tiny.lamb.json")
    assert report.passed
    return folder / "tiny.lamb.json"


@pytest.fixture
def verified_copy(tmp_path, verified_tiny):
    """A private copy of ``verified_tiny`` under tmp_path/model; returns its manifest path."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(verified_tiny.parent, folder)
    return folder / verified_tiny.name


@pytest.fixture(scope="session")
def target_installs(tmp_path_factory):
    """``install_for_target`` of the runtime library + Pillow for python3.12-x86_64 and
    python3.11-x86_64, keyed by target name. Do not modify the trees; copy them."""
    from lamb import targets
    from lamb.release import lib_choice, wheels

    installs = {}
    for runtime in ("python3.12", "python3.11"):
        target = targets.get_target(runtime, "x86_64")
        choice = lib_choice.resolve(target, None, purpose=lib_choice.TAGGED).choice
        dest = tmp_path_factory.mktemp(f"deps-{target.name}")
        installs[target.name] = wheels.install_for_target([*choice.requirements, "pillow"], target, dest)
    return installs


# -- deploy ------------------------------------------------------------------------------------
# AWS is always a fake here (moto, botocore's Stubber): these fixtures make sure no test can
# reach a real account, whatever the shell that runs pytest has configured.


@pytest.fixture
def aws_env(monkeypatch, tmp_path_factory):
    """Fake credentials and an empty AWS configuration; nothing from the caller's environment."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    empty = tmp_path_factory.mktemp("aws-config")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return "eu-west-1"


def make_deploy_artifact(folder, *, model_bytes=1024, arch="x86_64", runtime="python3.12", seed=0, measured=True, name="model"):
    """A zip shaped like `lamb package`'s (handler, lamb.json with its package record, a model of
    ``model_bytes`` incompressible bytes, stored) and the manifest beside it whose record holds
    this zip's sha256 and the smoke run's figures. Returns the zip's path."""
    import dataclasses
    import json
    import zipfile
    from pathlib import Path

    import numpy as np

    from lamb import layout
    from lamb import manifest as mf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    python = runtime.removeprefix("python")
    record = mf.PackageRecord(
        target=f"{runtime}-{arch}", runtime=runtime, python=python, arch=arch, os="Amazon Linux 2023", glibc="2.34",
        format="zip", handler=layout.HANDLER, runtime_lib="ai-edge-litert", runtime_lib_version="2.1.0",
        installed={"numpy": "2.3.0", "pillow": "11.3.0"}, lamb_version="0.1.0",
    )
    model = np.random.default_rng(seed).integers(0, 256, size=model_bytes, dtype=np.uint8).tobytes()
    spec = mf.TensorSpec("image", [1, 32, 32, 3], "float32")
    manifest = mf.Manifest(
        model=mf.ModelEntry("model.tflite", "tflite", "0" * 64, len(model)), source=f"{name}.h5", source_sha256=None,
        source_format="h5", source_bytes=1, loader="keras", inputs=[spec], outputs=[mf.TensorSpec("logits", [1, 4], "float32")],
        quantization="float32", preprocess="xception", labels=["cat", "dog", "bird", "fish"], package=record,
    )
    path = folder / f"{name}-{runtime}-{arch}.zip"
    stamp = (1980, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo(layout.HANDLER_FILE, stamp), "def lambda_handler(event, context):\n    return {'cat': 1.0}\n")
        zf.writestr(zipfile.ZipInfo(layout.MANIFEST_FILE, stamp), json.dumps(manifest.to_dict()))
        zf.writestr(zipfile.ZipInfo("model.tflite", stamp), model)
    smoke = mf.SmokeResult(ran=measured, passed=measured, stand_in=False, label=f"the artifact itself on Python {python}",
                           init_ms=190.0, invoke_ms=200.0, peak_rss_mb=241.0)
    full = dataclasses.replace(record, artifact=path.name, sha256=mf.sha256_file(path), zipped_bytes=path.stat().st_size, smoke=smoke)
    mf.write(manifest.with_package(full), folder / f"{name}{mf.SUFFIX}")
    return path


def make_image_context(folder, *, arch="arm64", runtime="python3.12"):
    """An image build context shaped like `lamb package --format image`'s: lamb.json with a package
    record whose format is image, a Dockerfile, the handler. Returns the folder."""
    import dataclasses
    import shutil
    from pathlib import Path

    from lamb import layout
    from lamb import manifest as mf

    zip_path = make_deploy_artifact(Path(folder).parent / "zip-for-context", arch=arch, runtime=runtime)
    shipped = mf.read_shipped(zip_path)
    context = Path(folder)
    context.mkdir(parents=True)
    mf.write(dataclasses.replace(shipped, package=dataclasses.replace(shipped.package, format="image")), context / layout.MANIFEST_FILE)
    (context / "Dockerfile").write_text(f"FROM public.ecr.aws/lambda/python:{runtime.removeprefix('python')}\n")
    (context / layout.HANDLER_FILE).write_text("def lambda_handler(event, context):\n    return {}\n")
    shutil.rmtree(zip_path.parent)
    return context


@pytest.fixture
def deploy_artifact_factory(tmp_path):
    """make_deploy_artifact in this test's tmp_path."""

    def make(**kwargs):
        return make_deploy_artifact(tmp_path / kwargs.pop("subdir", "out"), **kwargs)

    return make


@contextlib.contextmanager
def at_most(seconds: float):
    """Stop the block with a TimeoutError after ``seconds``: a guard against a hang, not a timing."""
    def stop(*_):
        raise TimeoutError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
