"""LiteRT: the engine family that runs ``.tflite`` models (``ai-edge-litert``, and its predecessor
``tflite-runtime``), as runtime-library records.

Two libraries can run a .tflite in a Lambda function: ``ai-edge-litert`` (Google's current one)
and ``tflite-runtime`` (its predecessor, frozen at 2.14). Both run the ``tflite`` format, written by
TensorFlow's converter (``lamb.convert.tflite``) in one of the quantization modes below, and
served by the handler's ``litert`` backend (which ``lamb verify`` runs too).
"""

from __future__ import annotations

from dataclasses import dataclass

from lamb.quantization import Mode, Tolerances
from lamb.runtime_lib import Explanation, ModelFormat, RuntimeLib, SlimRule, WheelRow, register

# Default tolerances, set from what each mode measurably achieves (TF 2.21 -> ai-edge-litert 2.3;
# max error / output range, mean cosine, top-1 agreement; measured 2026-11-26 with
# `lamb convert -q MODE` and `lamb verify --images` on 200 real images, seeded crops, flips and
# brightness changes of models/demo/samples; int8 calibrated on models/demo/samples):
#              demo model (trained, models/demo)        Xception shape (benchmarks/xception_model.py)
#              200 images                100 random     200 images                100 random
#   float32    2.9e-7 / 1.0     / 100 %   2.4e-7 / 100 %  8.8e-7 / 1.0     / 100 %   9.5e-7 / 100 %
#   float16    2.9e-4 / 1.0     / 100 %   3.5e-4 / 100 %  2.8e-4 / 1.0     / 100 %   2.1e-4 / 100 %
#   dynamic    1.2e-2 / 0.99983 / 100 %   1.1e-2 / 100 %  6.3e-3 / 0.99997 /  99 %   7.0e-3 / 100 %
#   int8       9.7e-2 / 0.99923 / 99.5 %  0.36, cos 0.976 6.7e-2 / 0.99987 /  99 %   1.2e-2 /  97 %
# - min_top1 0.99 in every mode: every mode reached it on real images (the Xception shape's 99 %
#   has random weights, whose logits nearly tie). A model that flips a few percent of its answers is
#   not one a user would ship: tests/test_verify_tolerances.py perturbs the demo model to flip
#   3-4 %, which the old dynamic (>= 90 %) and int8 (>= 80 %) defaults passed. Whether the inputs
#   can show 99 % is lamb.verify.evidence's question (the Wilson lower bound).
# - rtol: the worst measured error with margin. float32 ~100x (summation order and fused ops
#   only; still catches a 5 % change to one layer's weights); float16 ~6x over 3.5e-4; dynamic ~3x
#   over 1.2e-2; int8 ~2x over 9.7e-2 on real images. Random pixels reach int8 activations outside
#   the calibrated ranges (0.36): they are no evidence for int8 (lamb.verify.evidence).
# - min_cosine: 1 - cosine at ~5x the worst measured gap (float16 rounds to 1.000000); below it the
#   output's direction changed, which no rounding explains.
# atol only matters for outputs whose range is ~0 (a constant head); it is kept far below the
# range of any real logits.


@dataclass(frozen=True)
class ConverterSettings:
    """TensorFlow's ``TFLiteConverter`` settings for one mode, as names ``lamb.convert.tflite``
    resolves on ``tf``: Optimize.DEFAULT on; the weight types the kernels may use; the op set the
    model may use."""

    optimize: bool = False
    supported_types: tuple[str, ...] = ()
    ops_set: str = "TFLITE_BUILTINS"


MODES: tuple[Mode, ...] = (
    Mode(
        "float32", "no quantization", settings=ConverterSettings(),
        tolerances=Tolerances(atol=1e-6, rtol=1e-4, min_cosine=0.9999, min_top1=0.99),
    ),
    # Weights rounded to 11 significant bits.
    Mode(
        "float16", "float16 weights", weights="float16", settings=ConverterSettings(True, ("float16",)),
        tolerances=Tolerances(atol=1e-5, rtol=2e-3, min_cosine=0.9999, min_top1=0.99),
    ),
    # int8 weights, activations quantized on the fly.
    Mode(
        "dynamic", "int8 weights, float activations", weights="int8", settings=ConverterSettings(True),
        tolerances=Tolerances(atol=1e-4, rtol=0.04, min_cosine=0.999, min_top1=0.99),
    ),
    # Integer activations on ranges measured on the calibration images; integer-only ops
    # (TFLITE_BUILTINS_INT8), so the converter refuses a model it cannot make fully integer.
    Mode(
        "int8", "full-integer, needs --calibration", weights="int8", activations="int8",
        settings=ConverterSettings(True, ops_set="TFLITE_BUILTINS_INT8"), calibrated=True, integer_io="int8",
        tolerances=Tolerances(atol=1e-3, rtol=0.2, min_cosine=0.995, min_top1=0.99),
    ),
)


TFLITE = ModelFormat(
    name="tflite", suffix=".tflite", file="model.tflite", converter="lamb.convert.tflite", modes=MODES,
    title="a TensorFlow Lite", magic=(4, b"TFL3"),  # the flatbuffer's file identifier
)

# The slimming rules were read off the real wheels (``unzip -l`` of ai-edge-litert 2.3.0 and 1.4.0):
# the handler only calls ``Interpreter(model_path=...)``.
SLIM_RULES: tuple[SlimRule, ...] = (
    # ai-edge-litert 2.x loads libLiteRt.so only "if isfile" (its __init__.py); the Interpreter
    # API lives in libpywrap_litert_common.so. The WebGPU accelerator is dlopen'ed for GPU
    # delegates, and Lambda has no GPU.
    SlimRule("litert accelerators", "GPU/NPU accelerators and the CompiledModel runtime; Lambda has no GPU or NPU "
             "and the handler uses the Interpreter API",
             ("ai_edge_litert/libLiteRtWebGpuAccelerator.so", "ai_edge_litert/libLiteRt*Accelerator*.so",
              "ai_edge_litert/libLiteRt.so", "ai_edge_litert/libLiteRtRuntimeCApi.so")),
    SlimRule("litert vendor plugins", "ahead-of-time compiler plugins and dispatch libraries for Qualcomm, "
             "MediaTek, Samsung, Google Tensor and Intel NPUs",
             ("ai_edge_litert/vendors", "ai_edge_litert/aot")),
    SlimRule("litert tools", "model tools (apply_plugin_main, the benchmark script, flatbuffer utilities)",
             ("ai_edge_litert/tools",)),
    # Declared by ai-edge-litert for its converter/AOT/tooling modules; ai_edge_litert.interpreter
    # imports none of them (only numpy and its own wrappers).
    SlimRule("litert tool dependencies", "protobuf, flatbuffers, tqdm, ml_dtypes: needed by LiteRT's tools, "
             "not by its Interpreter",
             ("google/protobuf", "google/_upb", "flatbuffers", "tqdm", "ml_dtypes",
              "protobuf-*.dist-info", "flatbuffers-*.dist-info", "tqdm-*.dist-info", "ml_dtypes-*.dist-info")),
)

# What LiteRT's error texts mean for the artifact.
EXPLANATIONS: tuple[Explanation, ...] = (
    Explanation(
        r"Regular TensorFlow ops are not supported|Flex",
        "{where} cannot load {model}: it holds TF Select (Flex) ops, which no slim runtime library includes, "
        "so the artifact would fail at cold start",
        "re-run `lamb convert` without --allow-flex (replace the layers that need TF ops)",
    ),
    # "Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. An older version of this builtin
    # might be supported": the converter (TF 2.16+) wrote an op version the runtime predates.
    Explanation(
        r"Didn't find op for builtin opcode '?(?P<op>\w+)'? version '?(?P<version>\d+)",
        "{where} cannot load {model}: the model uses {op} version {version}, an op version newer than this "
        "runtime knows (the converter is newer than the runtime), so the artifact would fail at cold start",
        "ship a newer runtime library (--runtime-lib ai-edge-litert), or convert with a converter no newer than it",
    ),
)

LIBRARIES: tuple[RuntimeLib, ...] = (
    RuntimeLib("ai-edge-litert", "ai_edge_litert", ("litert",), TFLITE, "litert", SLIM_RULES, EXPLANATIONS),
    # tflite-runtime 2.14 was built against NumPy 1.x's ABI: with NumPy 2 its extension fails
    # to import ("module compiled against ABI version 0x1000009"), and its wheel does not say so.
    # It (frozen at 2.14) has no kernels for the op versions TF 2.16+ writes for hybrid
    # (dynamic-range) and int8 models: they fail in AllocateTensors ("FULLY_CONNECTED version 12").
    RuntimeLib("tflite-runtime", "tflite_runtime", ("tflite",), TFLITE, "litert", SLIM_RULES, EXPLANATIONS,
               lacks=("dynamic", "int8"), needs=("numpy<2",), frozen=True),
)

# Measured on PyPI on 2026-11-24 with, for each Lambda runtime and arch,
#   pip index versions PKG --only-binary=:all: --implementation cp --python-version 3.X \
#       --platform manylinux_2_<glibc..17>_<machine> --platform manylinux2014_<machine>
# (glibc 2.26 for python3.10/3.11 on Amazon Linux 2, 2.34 for python3.12+ on AL2023), and by
# downloading the wheels: ai-edge-litert 2.x is tagged manylinux_2_27, 1.x manylinux_2_17,
# tflite-runtime manylinux2014 (= 2_17). ai-edge-litert 2.1.0 is here because the ELF audit
# (lamb.release.lib_choice) needs a fallback on arm64: its aarch64 wheels need GLIBCXX_3.4.26,
# while every aarch64 release from 2.1.1 to 2.3.0 needs GLIBCXX_3.4.30, past AL2023's documented
# GCC 11 (audited 2026-12-06; 2.1.0 has no cp314 wheel, so python3.14 on arm64 has none).
# Newest first within each library; the first row that fits a target wins.
_BOTH = ("x86_64", "arm64")
WHEELS: tuple[WheelRow, ...] = (
    WheelRow("ai-edge-litert", "2.3.0", ("3.12", "3.13", "3.14"), _BOTH, (2, 27)),
    WheelRow("ai-edge-litert", "2.1.0", ("3.10", "3.11", "3.12", "3.13"), _BOTH, (2, 27)),
    WheelRow("ai-edge-litert", "1.4.0", ("3.10", "3.11", "3.12"), _BOTH, (2, 17)),
    WheelRow("tflite-runtime", "2.14.0", ("3.10", "3.11"), ("x86_64",), (2, 17)),
    WheelRow("tflite-runtime", "2.13.0", ("3.10",), ("arm64",), (2, 17)),
)

register(LIBRARIES, WHEELS)
