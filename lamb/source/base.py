"""What every source offers the steps: ``Source`` (the model as the user brings it) and ``Loaded``
(the model read), as ``typing.Protocol`` types; ``InputSpec``, an input as the source declares it.

Keras files, SavedModel folders and ONNX files implement them (``lamb.source.keras``,
``lamb.source.savedmodel``, ``lamb.source.onnx``); convert, verify and compare ask these methods and
never look at a file's suffix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lamb import manifest as mf
from lamb.errors import InputError
from lamb.handler.lambkit.backends import signature_key  # the shipped backend pairs outputs through it

NHWC = "NHWC"  # channels last: Keras's layout, and what the handler's preprocessing makes
NCHW = "NCHW"  # channels first: PyTorch's layout (the manifest records it on such inputs)
_CHANNELS = (1, 3)  # an image's channel counts: how --input-shape given in the other layout's order is told apart


@dataclass
class InputSpec:
    """A model input as its source declares it (None for an open dimension), in the source's layout."""

    name: str
    shape: list[int | None]
    dtype: Any  # a tf.DType for the Keras and SavedModel sources, a NumPy dtype name for ONNX
    layout: str = NHWC

    def image_hwc(self) -> list[int | None]:
        """Height, width and channels of a 4-D image input, whatever its layout."""
        _, *dims = self.shape
        return [dims[1], dims[2], dims[0]] if self.layout == NCHW else list(dims)

    def expected_form(self) -> str:
        """How ``--input-shape`` is written for this input: the model's own order."""
        return "CHANNELS,HEIGHT,WIDTH (e.g. 3,224,224) or HEIGHT,WIDTH" if self.layout == NCHW else "HEIGHT,WIDTH,CHANNELS (e.g. 224,224,3) or HEIGHT,WIDTH"


@dataclass
class AsGiven:
    """A source already in the model format asked for: shipped as it is (float32), or quantized from ``model``."""

    data: bytes  # the model file as it is on disk
    model: Callable[[], bytes]  # the model with its weights in one protobuf (what a quantizer reads)
    external: list[Path] = field(default_factory=list)  # files the model reads its weights from, beside it
    origin: dict[str, Any] = field(default_factory=dict)  # what the model says of itself (exporter, opset)


@dataclass
class ReferenceOutputs:
    """The source model's outputs on verify's inputs, and what computed them."""

    outputs: list[Any]  # NumPy arrays, in the order of ``Loaded.outputs()``
    which: str  # "keras" | "onnx.reference" | "onnxruntime-unoptimized": the report's reference
    label: str  # one sentence naming it for the report


class RunFailed(Exception):
    """A runner process could not load or run a model (``lamb.verify.runner.RunnerFailure`` is one)."""


# Starts a runner process on a model: (the model file, the runner module) -> a context manager
# whose value has wait_ready(), run(feeds, workdir) and kill() (lamb.verify.runner.ModelRunner).
StartRunner = Callable[[Path, str], contextlib.AbstractContextManager[Any]]


class Source(Protocol):
    """The model as the user brings it, before anything loads (``lamb.source.open_source``)."""

    path: Path
    kind: str  # the manifest's ``source_format``: "h5" | "keras" | "savedmodel" | "onnx"
    title: str  # how a sentence names it: "Keras model", "SavedModel", "ONNX model"
    readers: tuple[str, ...]  # the distributions that read it, whose versions the manifest records

    @property
    def stem(self) -> str:
        """The name converted files take (``model.h5`` -> ``model.<format suffix>``)."""
        ...

    def files(self) -> list[Path]:
        """Every file the model is made of (an ONNX model's external data too): its size is theirs."""
        ...

    def converts_to(self, fmt: str) -> bool:
        """Whether lamb can make a model of format ``fmt`` (``lamb.runtime_lib``) from it."""
        ...

    def sha256(self) -> str | None:
        """The hash the manifest records (None where no single file stands for the model)."""
        ...

    def load(self, *, allow_unsafe_lambda: bool = False) -> Loaded:
        """The model read, ready to convert and to run; a ``LambError`` when it cannot be."""
        ...


class Loaded(Protocol):
    """A source read: its signature, its preprocessing evidence, the reference outputs verify trusts."""

    source: Path
    source_format: str
    loader: str  # what read it: "keras" | "tf_keras" | "tf.saved_model" | "onnx"
    notes: list[str]
    unsafe_lambdas: list[str]

    def inputs(self) -> list[InputSpec]: ...

    def outputs(self) -> list[mf.TensorSpec]: ...

    def preprocessing(self, given: str | None) -> tuple[str, str, str | None]:
        """(the mode to record, how it was decided, a warning when ``given`` contradicts the model)."""
        ...

    def parameter_count(self) -> int | None: ...

    def final_activation(self) -> str | None:
        """"sigmoid" or "softmax" when the model's one output comes out of that activation, else None
        (what ``lamb.convert.heads`` infers the output head from)."""
        ...

    def as_format(self, fmt: str) -> AsGiven | None:
        """The model already in format ``fmt``, taken as it is; None when it must be converted to it
        (InputError when it cannot be)."""
        ...

    def reference_outputs(
        self, arrays: list[Any], start_runner: StartRunner, on_batch: Callable[[int], None] | None = None,
    ) -> ReferenceOutputs:
        """The model's outputs on ``arrays`` (one per input, in its own layout)."""
        ...


def clean_name(name: str, fallback: str) -> str:
    """The signature key for ``name``, or ``fallback`` where none is left that starts with a letter."""
    name = signature_key(name)
    if not name or not (name[0].isalpha()):
        name = fallback
    return name


def source_bytes(source: Source) -> int:
    """What the source weighs on disk: every file it is made of."""
    return sum(p.stat().st_size for p in source.files())


def apply_input_shape(specs: list[InputSpec], input_shape: Sequence[int] | None) -> list[InputSpec]:
    """``specs`` with ``--input-shape`` filling open dimensions, in the input's own layout (H,W,3
    for NHWC, 3,H,W for NCHW, or just H,W; the other layout's order where the channels tell it
    apart); InputError, showing the form expected, when it does not fit, or when a height or width
    stays open (nothing could resize images for it)."""
    if input_shape is not None:
        if len(specs) != 1:
            raise InputError(
                f"--input-shape applies to single-input models; this one has {len(specs)} inputs",
                "convert a single-input model, or give the model fixed input shapes before saving",
            )
        specs = [_fixed(specs[0], [int(d) for d in input_shape])]
    for spec in specs:
        if any(d is None for d in spec.shape[1:]):
            form = spec.expected_form() if len(spec.shape) == 4 else f"{len(spec.shape) - 1} sizes without the batch dimension"
            raise InputError(
                f"the model's input {spec.name!r} has open dimensions {mf.format_shape(spec.shape)} ({spec.layout}): "
                "the converted model and the function need them fixed",
                f"pass --input-shape {form}, the size the model should take",
            )
    return specs


def _fixed(spec: InputSpec, sizes: list[int]) -> InputSpec:
    """``spec`` with ``sizes`` given (without the batch dimension; for an image, H,W alone keep its channels)."""
    shown = ",".join(str(d) for d in sizes)
    image = len(spec.shape) == 4
    form = spec.expected_form() if image else f"{len(spec.shape) - 1} sizes without the batch dimension"
    if any(d <= 0 for d in sizes):
        raise InputError(f"--input-shape {shown} has a non-positive dimension", f"give positive sizes: {form}")
    channels = spec.image_hwc()[2] if image else None
    if image and len(sizes) == 2:
        sizes = [channels or 3, *sizes] if spec.layout == NCHW else [*sizes, channels or 3]
    elif image and len(sizes) == 3 and (sizes[2] in _CHANNELS) != (sizes[0] in _CHANNELS):
        # The other layout's order, told apart by where the channels are: read in the model's.
        first = sizes[0] in _CHANNELS
        if spec.layout == NCHW and not first:
            sizes = [sizes[2], sizes[0], sizes[1]]
        elif spec.layout == NHWC and first:
            sizes = [sizes[1], sizes[2], sizes[0]]
    if len(sizes) != len(spec.shape) - 1:
        raise InputError(
            f"--input-shape {shown} does not fit the model's input {spec.name!r} {mf.format_shape(spec.shape)} ({spec.layout})",
            f"give {form}",
        )
    for have, want in zip(spec.shape[1:], sizes):
        if have is not None and have != want:
            raise InputError(
                f"--input-shape {shown} contradicts the model's input {spec.name!r} {mf.format_shape(spec.shape)} ({spec.layout})",
                f"only open dimensions can be set: give {form}, matching the model where it is fixed",
            )
    return InputSpec(spec.name, [spec.shape[0], *sizes], spec.dtype, spec.layout)
