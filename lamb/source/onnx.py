"""An exported ONNX model as a source (PyTorch's ``torch.onnx.export``, or any exporter), taken as it is.

Nothing is converted: the model keeps its graph, its opset and its external weights
(``model.onnx.data``, which ship beside it). Its input's layout is read off the graph (channel-first
``(N, 3, H, W)`` is PyTorch's, recorded ``"layout": "NCHW"``), its preprocessing inferred where the
layout makes it obvious. The reference ``lamb verify`` trusts is an implementation independent of
ONNX Runtime: ``onnx.reference.ReferenceEvaluator`` (ONNX's own definition of each op, in NumPy).
It is slow on big convolutions: when one sample says the whole set would not finish within
``REFERENCE_BUDGET_S``, or it cannot run an op, the reference is ONNX Runtime with every graph
optimization disabled, labelled the weaker reference (it shares ONNX Runtime's kernels, so it proves less).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lamb import files
from lamb import manifest as mf
from lamb.errors import InputError, ModelLoadError
from lamb.manifest import PREPROCESS_NOT_INFERRED as NOT_INFERRED
from lamb.source import onnx_check
from lamb.source.base import NCHW, NHWC, AsGiven, InputSpec, ReferenceOutputs, RunFailed, StartRunner

FORMAT = "onnx"  # the model format it already is (lamb.runtime_lib's record of ONNX Runtime)
RUNTIME_LIB = "onnxruntime"  # what runs it, in the sentences of onnx_check
LOADER = "onnx"
SUFFIX = ".onnx"
# A protobuf cannot exceed 2 GB: a quantized copy is written in one file, so its float source must fit.
_PROTOBUF_LIMIT = 2**31
# Wall time the reference evaluator may take for all inputs of one verification. Past it, the
# weaker reference answers: verify stays a command one waits for.
REFERENCE_BUDGET_S = 120.0
INDEPENDENT = "onnx.reference"
WEAKER = "onnxruntime-unoptimized"


class OnnxSource:
    """An ``.onnx`` file and the external data it names (``lamb.source.base.Source``)."""

    title = "ONNX model"
    readers: tuple[str, ...] = ("onnx", "onnxruntime")  # the distributions whose versions the manifest records
    kind = "onnx"

    def __init__(self, path: Path):
        self.path = Path(path)

    @staticmethod
    def claims(path: Path) -> bool:
        return path.suffix.lower() == SUFFIX and path.is_file()

    @property
    def stem(self) -> str:
        return self.path.stem

    def files(self) -> list[Path]:
        return [self.path, *(self.path.parent / name for name in _external_names(self.path))]

    def converts_to(self, fmt: str) -> bool:
        return fmt == FORMAT  # taken as it is: lamb converts ONNX to nothing else

    def sha256(self) -> str | None:
        return mf.sha256_file(self.path)

    def load(self, *, allow_unsafe_lambda: bool = False) -> LoadedOnnx:
        """The model with its weights; refused when no Lambda function could run it (``onnx_check``)."""
        model, external = _load(self.path)
        onnx_check.check_shippable(model, self.path.name, RUNTIME_LIB)
        return LoadedOnnx(self.path, model, external)


class LoadedOnnx:
    """An ONNX model read with its weights (``lamb.source.base.Loaded``)."""

    source_format = "onnx"
    loader = LOADER

    def __init__(self, source: Path, model: Any, external: list[str]):
        self.source = source
        self.model = model
        self.external = external
        self.layout = _layout(model)
        self.notes: list[str] = []
        self.unsafe_lambdas: list[str] = []  # an ONNX graph runs no Python
        first = self.inputs()[0]
        if first.layout == NCHW:
            shown = mf.format_shape([-1 if d is None else d for d in first.shape])
            self.notes.append(f"input {first.name} {shown} is channel-first (NCHW): the handler feeds it so")

    def inputs(self) -> list[InputSpec]:
        return [InputSpec(s.name, [None if d < 0 else d for d in s.shape], s.dtype, s.layout or NHWC)
                for s in tensor_specs(self.model, self.layout)[0]]

    def outputs(self) -> list[mf.TensorSpec]:
        return tensor_specs(self.model, self.layout)[1]

    def preprocessing(self, given: str | None) -> tuple[str, str, str | None]:
        return (*_preprocessing(given, self.layout), None)

    def parameter_count(self) -> int | None:
        return _parameters(self.model)

    def final_activation(self) -> str | None:
        return onnx_activation(self.model)

    def as_format(self, fmt: str) -> AsGiven | None:
        if fmt != FORMAT:
            raise InputError(f"{self.source.name} is an ONNX model, and lamb converts ONNX models to no {fmt} model",
                             "use --runtime-lib onnxruntime, which runs it as it is")
        return AsGiven(self.source.read_bytes(), lambda: _bytes(self.model, self.source),
                       [self.source.parent / name for name in self.external], _origin(self.model))

    def reference_outputs(
        self, arrays: list[Any], start_runner: StartRunner, on_batch: Callable[[int], None] | None = None,
    ) -> ReferenceOutputs:
        """The source run on ONNX's own evaluator, else, past its budget, on unoptimized ONNX Runtime."""
        feeds = {spec.name: a for spec, a in zip(self.inputs(), arrays)}
        names = [s.name for s in self.outputs()]
        return reference_outputs(start_runner, self.source, feeds, names)


def reference_outputs(
    start_runner: StartRunner, source: Path, feeds: dict[str, Any], output_names: list[str], budget_s: float = REFERENCE_BUDGET_S,
) -> ReferenceOutputs:
    """The source model's outputs in ``output_names`` order, which reference computed them, the report's sentence."""
    n = len(next(iter(feeds.values())))
    why = ""
    with tempfile.TemporaryDirectory(prefix="lamb-reference-") as workdir, start_runner(source, INDEPENDENT) as ref:
        timer = threading.Timer(budget_s, ref.kill)
        timer.start()
        started = time.perf_counter()
        try:
            info = ref.wait_ready()
            first = time.perf_counter()  # the runner's start and imports are not a per-input cost
            ref.run({k: v[:1] for k, v in feeds.items()}, Path(workdir))
            per_sample = time.perf_counter() - first
            if time.perf_counter() - started + per_sample * (n - 1) <= budget_s:
                out, _ = ref.run(feeds, Path(workdir))
                label = (f"onnx.reference {info.get('version', '')} (ONNX's own evaluator, independent of ONNX Runtime) "
                         f"on the source {source.name}")
                return ReferenceOutputs([out[k] for k in output_names], INDEPENDENT, label)
            why = f"onnx.reference took {per_sample:.1f} s for one input, past the {budget_s:.0f} s budget for {n}"
        except RunFailed as failure:  # killed past its budget, or an op it lacks: the weaker reference answers
            overran = time.perf_counter() - started >= budget_s
            message = str(failure)
            why = f"onnx.reference ran past its {budget_s:.0f} s budget" if overran else f"onnx.reference could not run it ({message[:160]})"
        finally:
            timer.cancel()
    with tempfile.TemporaryDirectory(prefix="lamb-reference-") as workdir, start_runner(source, WEAKER) as ref:
        info = ref.wait_ready()
        out, _ = ref.run(feeds, Path(workdir))
    label = (f"onnxruntime {info.get('version', '')} with every graph optimization disabled on the source {source.name}: "
             f"the weaker reference, sharing ONNX Runtime's kernels ({why})")
    return ReferenceOutputs([out[k] for k in output_names], WEAKER, label)


# -- reading the model ----------------------------------------------------------------------------


def _load(source: Path) -> tuple[Any, list[str]]:
    """The model with its weights, and the external data files it names (relative to its folder)."""
    import onnx

    external = _external_names(source)
    missing = [name for name in external if not (source.parent / name).is_file()]
    if missing:
        raise InputError(
            f"{source.name} keeps its weights in {', '.join(missing)}, which is not beside it",
            "put the .onnx.data file(s) the exporter wrote in the same folder as the .onnx",
        )
    try:
        onnx.checker.check_model(str(source))
        model = onnx.load(str(source))
    except (onnx.checker.ValidationError, onnx.onnx_cpp2py_export.shape_inference.InferenceError) as exc:
        raise ModelLoadError(f"{source.name} is not a valid ONNX model: {_first(exc)}", "export it again") from exc
    except Exception as exc:  # protobuf's DecodeError and friends: not a model at all
        raise ModelLoadError(f"{source.name} is not an ONNX model ({type(exc).__name__}: {_first(exc)})",
                             "pass the .onnx file your exporter wrote") from exc
    if not [v for v in model.graph.input if v.name not in {t.name for t in model.graph.initializer}]:
        raise InputError(f"{source.name} has no inputs", "export the model with its image input")
    return model, external


def _external_names(source: Path) -> list[str]:
    """The files an ONNX model's initializers point to (``location`` of external data), in order."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    try:
        bare = onnx.load(str(source), load_external_data=False)
    except Exception as exc:
        raise ModelLoadError(f"{source.name} is not an ONNX model ({type(exc).__name__}: {_first(exc)})",
                             "pass the .onnx file your exporter wrote") from exc
    names: list[str] = []
    for tensor in _get_all_tensors(bare):
        if uses_external_data(tensor):
            location = next((e.value for e in tensor.external_data if e.key == "location"), None)
            if location is None or Path(location).is_absolute() or ".." in Path(location).parts:
                raise InputError(f"{source.name} points its weights at {location!r}, outside its own folder",
                                 "save the model with its external data beside it (onnx.save(..., location='model.onnx.data'))")
            onnx_check.check_external(tensor, location, source.parent, source.name)
            if location not in names:
                names.append(location)
    return names


def _layout(model: Any) -> str:
    """ "NCHW" when the first 4-D input has 3 channels first and not last; else "NHWC"."""
    constants = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in constants:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]
        if len(dims) == 4 and dims[1] in (1, 3) and dims[3] not in (1, 3):
            return NCHW
        return NHWC
    return NHWC


def tensor_specs(model: bytes | Any, layout: str | None) -> tuple[list[mf.TensorSpec], list[mf.TensorSpec]]:
    """The graph's inputs and outputs as TensorSpecs (-1 for a named or open dimension).

    ``layout`` is recorded on 4-D inputs ("NCHW" for channel-first; "NHWC" is left implicit, as
    the manifest's absent layout means NHWC). Initializers listed as inputs (old exporters do) are
    not inputs.
    """
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    proto = onnx.load_from_string(model) if isinstance(model, bytes) else model
    graph = proto.graph
    constants = {t.name for t in graph.initializer}

    def spec(value: Any, image_layout: str | None) -> mf.TensorSpec:
        t = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in t.shape.dim]
        dtype = tensor_dtype_to_np_dtype(t.elem_type).name
        return mf.TensorSpec(value.name, shape, dtype, layout=image_layout if len(shape) == 4 and image_layout != NHWC else None)

    return [spec(v, layout) for v in graph.input if v.name not in constants], [spec(v, None) for v in graph.output]


# ONNX ops that pass an activation's values through unchanged: the walk back from the output steps over them.
_PASS_THROUGH = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast"}


def onnx_activation(model: Any) -> str | None:
    """"sigmoid" or "softmax" when the graph's first output comes out of that op (through reshapes), else None."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    name = graph.output[0].name if graph.output else None
    while name in producer:
        node = producer[name]
        if node.op_type not in _PASS_THROUGH:
            return {"Sigmoid": "sigmoid", "Softmax": "softmax", "LogSoftmax": "softmax"}.get(node.op_type)
        name = node.input[0] if node.input else None
    return None


def _preprocessing(given: str | None, layout: str) -> tuple[str, str]:
    if given is not None:
        return given, "given"
    if layout == NCHW:
        return "torch", ("inferred: the input is channel-first (N, 3, H, W), PyTorch's layout; torchvision models "
                         "take ImageNet mean/std ('torch'). Pass --preprocess if this model was trained otherwise")
    return "none", f"{NOT_INFERRED}: an ONNX graph does not say how its inputs were scaled; pass --preprocess"


def _bytes(model: Any, source: Path) -> bytes:
    size = model.ByteSize()
    if size >= _PROTOBUF_LIMIT:
        raise InputError(f"{source.name} holds {size / 1e9:.1f} GB of weights; ONNX Runtime's quantizer works on models under 2 GB",
                         "ship it as float32 (the default)")
    return model.SerializeToString()


def _parameters(model: Any) -> int:
    total = 0
    for t in model.graph.initializer:
        size = 1
        for d in t.dims:
            size *= int(d)
        total += size
    return total


def _origin(model: Any) -> dict[str, Any]:
    """What the model says of itself: its exporter and opset."""
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p) or "unknown"
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return {"converter": "as given", "producer": producer, "opset": int(opset), "ir_version": int(model.ir_version)}


def _first(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def save_from_memory(model: Any, folder: Path) -> Path | None:
    """An ``onnx.ModelProto`` in memory (``torch.onnx.export`` to a buffer, ``onnx.load``) saved
    in ``folder`` as ``<graph name>.onnx`` (atomically); None for any other object."""
    if type(model).__module__.split(".")[0] != "onnx" or not hasattr(model, "graph"):
        return None
    import onnx

    path = folder / f"{model.graph.name or 'model'}.onnx"
    with files.atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path
