"""ONNX Runtime: the engine that runs ``.onnx`` models (``onnxruntime``), as a runtime-library record.

The ``onnx`` format is written by ``lamb.convert.onnx`` (a Keras model through a SavedModel and
tf2onnx, then ONNX Runtime's quantizer) or taken as given (``lamb convert model.onnx``,
``lamb.source.onnx``), and served by the handler's ``ort`` backend (which ``lamb verify`` runs
too).
"""

from __future__ import annotations

from lamb.quantization import Mode, Tolerances
from lamb.runtime_lib import ModelFormat, RuntimeLib, SlimRule, WheelRow, register

# Default tolerances, set from what each mode measurably achieves, measured as LiteRT's rows were
# (lamb.runtime_lib.litert): tf2onnx 1.17 opset 17 -> onnxruntime 1.32 (lamb's quantizer settings,
# lamb.convert.onnx); max error / output range, mean cosine, top-1 agreement; measured 2026-12-06
# with `lamb convert --runtime-lib onnxruntime -q MODE` and `lamb verify --images` on 200 real
# images (seeded crops, flips and brightness changes of models/demo/samples) or `--samples 100`;
# int8 calibrated on models/demo/samples:
#              demo model (trained, models/demo)        Xception shape (benchmarks/xception_model.py)
#              200 images                100 random     200 images                100 random
#   float32    1.8e-7 / 1.0     / 100 %   1.8e-7 / 100 %  1.8e-7 / 1.0     / 100 %   2.5e-7 / 100 %
#   float16    3.3e-4 / 1.0     / 100 %   3.5e-4 / 100 %  2.7e-4 / 1.0     / 100 %   2.1e-4 / 100 %
#   dynamic    1.1e-2 / 0.99987 / 100 %   1.4e-2 / 100 %  8.1e-3 / 0.99995 / 100 %   7.8e-3 /  97 %
#   int8       6.8e-2 / 0.99963 / 100 %   0.36, cos 0.974 5.7e-2 / 0.99987 / 100 %   1.5e-2 /  96 %
# The same defaults as LiteRT's, with about the same margins over these (float32 ~500x, float16
# ~6x, dynamic ~3x, int8 ~3x on real images; 1 - cosine ~5x): both engines reach the same errors
# mode for mode, so one set of defaults judges both, and a model one engine runs worse fails there.
# min_top1 0.99 as LiteRT's: every mode reaches 100 % on real images; the Xception shape's random
# weights make near-tied logits, which random pixels flip (97 %, 96 %), as they do on LiteRT.
MODES: tuple[Mode, ...] = (
    Mode("float32", "no quantization", tolerances=Tolerances(atol=1e-6, rtol=1e-4, min_cosine=0.9999, min_top1=0.99)),
    Mode(
        "float16", "float16 graph, float32 input and output", weights="float16",
        tolerances=Tolerances(atol=1e-5, rtol=2e-3, min_cosine=0.9999, min_top1=0.99),
    ),
    Mode(
        "dynamic", "uint8 weights, float activations", weights="uint8",
        tolerances=Tolerances(atol=1e-4, rtol=0.04, min_cosine=0.999, min_top1=0.99),
    ),
    # Static QDQ: int8 weights, uint8 activations on calibrated ranges; float32 input and output
    # (no integer_io: the quantizer keeps the graph's I/O float).
    Mode(
        "int8", "static int8 (QDQ, per-channel), needs --calibration", weights="int8", activations="uint8",
        calibrated=True, tolerances=Tolerances(atol=1e-3, rtol=0.2, min_cosine=0.995, min_top1=0.99),
    ),
)

ONNX = ModelFormat(
    name="onnx", suffix=".onnx", file="model.onnx", converter="lamb.convert.onnx", modes=MODES,
    title="an ONNX",
)

# Read off the real wheels (``unzip -l`` of onnxruntime 1.32.0 cp312 x86_64 and 1.16.3 cp311) and
# proven by running what is left (2026-12-06): with all three rules applied, python3.12 runs
# ``import onnxruntime`` and ``InferenceSession(...).run`` on 1.32.0 (and python3.11 on 1.16.3 with
# numpy<2) with the same outputs, importing none of the removed modules. 1.32.0 on python3.12
# x86_64: onnxruntime 74.7 -> 36.1 MB, 148 -> 103 MB with NumPy and Pillow; the smoke run of every
# artifact checks it again.
SLIM_RULES: tuple[SlimRule, ...] = (
    # onnxruntime_pybind11_state links no libonnxruntime.so (DT_NEEDED: libc, libstdc++, libm,
    # libgcc_s, libdl, librt, libpthread): the binding carries its own copy, 35 MB in 1.32.0.
    SlimRule("onnxruntime C API library", "libonnxruntime.so serves C/C++ programs; the Python binding "
             "carries its own copy and never loads it", ("onnxruntime/capi/libonnxruntime.so*",)),
    SlimRule("onnxruntime tools", "the model tools, transformer optimizers, quantizer, ONNX backend test API and "
             "sample datasets: offline tooling that InferenceSession never imports",
             ("onnxruntime/tools", "onnxruntime/transformers", "onnxruntime/quantization", "onnxruntime/backend",
              "onnxruntime/datasets")),
    SlimRule("onnxruntime tool dependencies", "protobuf, flatbuffers, packaging, sympy, mpmath, coloredlogs, "
             "humanfriendly: declared for onnxruntime's tools; `import onnxruntime` and a session import none",
             ("google/protobuf", "google/_upb", "flatbuffers", "packaging", "sympy", "mpmath", "coloredlogs",
              "humanfriendly", "coloredlogs.pth", "isympy.py", "share/man", "protobuf-*.dist-info",
              "flatbuffers-*.dist-info", "packaging-*.dist-info", "sympy-*.dist-info", "mpmath-*.dist-info",
              "coloredlogs-*.dist-info", "humanfriendly-*.dist-info")),
)

LIBRARIES: tuple[RuntimeLib, ...] = (
    RuntimeLib("onnxruntime", "onnxruntime", ("ort", "onnx"), ONNX, "ort", SLIM_RULES,
               summary="ONNX Runtime: runs .onnx models (PyTorch exports, or Keras through tf2onnx)"),
)

# Measured on PyPI on 2026-12-06 with
#   pip index versions onnxruntime --only-binary=:all: --implementation cp --python-version 3.X \
#       --platform manylinux_2_<N>_<machine> --platform manylinux2014_<machine>
# for N in 28, 27, 17: 1.32.0 is tagged manylinux_2_28 (cp311-cp314; cp310 stops at 1.23.2),
# 1.28.0 is the newest at manylinux_2_27, 1.16.3 the newest at manylinux_2_17 (Amazon Linux 2's
# glibc 2.26: python3.10 and python3.11).
_BOTH = ("x86_64", "arm64")
WHEELS: tuple[WheelRow, ...] = (
    WheelRow("onnxruntime", "1.32.0", ("3.11", "3.12", "3.13", "3.14"), _BOTH, (2, 28)),
    # Built against NumPy 1.x (NumPy 2 support came in 1.19): with NumPy 2 it fails to import.
    WheelRow("onnxruntime", "1.16.3", ("3.10", "3.11"), _BOTH, (2, 17), extra_needs=("numpy<2",)),
)

register(LIBRARIES, WHEELS)
