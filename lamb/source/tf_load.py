"""Load a trained model from whatever the user has: Keras 3 or Keras 2 ``.h5``, ``.keras``, SavedModel.

The order matters. Keras 3 reads its own files and most Keras-2 ``.h5`` files, but refuses any
Keras-2 graph that holds raw TensorFlow ops (``TFOpLambda``: every model with ``preprocess_input``
or a ``tf.math`` call between its layers, which is most course models). ``tf_keras`` (Keras 2 kept
alive) reads those, so it is the automatic fallback. A SavedModel directory is read by ``tf_keras``
when it carries Keras metadata (so we get layers and a parameter count), else by
``tf.saved_model.load`` through its ``serving_default`` signature.

Every way a file can be unusable becomes one ``LambError`` sentence before any output is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb.errors import ModelLoadError
from lamb.manifest import PREPROCESS_NOT_INFERRED as NOT_INFERRED
from lamb.source.base import AsGiven, InputSpec, ReferenceOutputs, StartRunner, clean_name
from lamb.source.keras_preprocess import infer_preprocess, preprocess_evidence

# What the loaders raise for a file they cannot make sense of. Anything else is a bug in lamb and
# must surface as a traceback.
_LOADER_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OSError, NotImplementedError, IndexError)


@dataclass
class LoadedModel:
    """A model ready to be traced for conversion, and how it was read."""

    model: Any  # keras.Model, tf_keras.Model, or the object tf.saved_model.load returns
    loader: str  # "keras" | "tf_keras" | "tf.saved_model"
    source_format: str  # "h5" | "keras" | "savedmodel"
    source: Path
    # Why Keras 3 was not used (first line of its error), when the loader is a fallback.
    fallback_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    unsafe_lambdas: list[str] = field(default_factory=list)  # Lambda layers holding Python code, loaded as allowed

    @property
    def is_keras(self) -> bool:
        return self.loader in ("keras", "tf_keras")

    @property
    def signature(self):
        """The SavedModel's ``serving_default`` function (``tf.saved_model`` loader only)."""
        if self.is_keras:
            return None
        return self.model.signatures["serving_default"]

    def parameter_count(self) -> int | None:
        if self.is_keras:
            return int(self.model.count_params())
        variables = getattr(self.model, "variables", None)
        if variables is None:
            return None
        total = 0
        for v in variables:
            size = 1
            for d in v.shape:
                size *= int(d)
            total += size
        return total

    def final_activation(self) -> str | None:
        """"sigmoid" or "softmax" when a Keras model's last layer ends in that activation, else None
        (a bare SavedModel shows no layers)."""
        layers = list(getattr(self.model, "layers", None) or []) if self.is_keras else []
        if not layers or len(list(getattr(self.model, "outputs", None) or [])) != 1:
            return None
        if type(layers[-1]).__name__ == "Softmax":
            return "softmax"
        activation = getattr(layers[-1], "activation", None)
        name = str(getattr(activation, "__name__", activation) or "").lower()
        return name if name in ("sigmoid", "softmax") else None

    def predict(self, *inputs):
        """Run the model on numpy input(s); returns a list of numpy outputs in signature order.

        One call path for all three loaders, so verify can compare against the source model
        without knowing how it was read.
        """
        import numpy as np

        if self.is_keras:
            arg = inputs[0] if len(inputs) == 1 else list(inputs)
            out = self.model(arg, training=False)
            if isinstance(out, dict):
                return [np.asarray(out[k]) for k in out]
            if isinstance(out, (list, tuple)):
                return [np.asarray(o) for o in out]
            return [np.asarray(out)]
        sig = self.signature
        names = sorted(sig.structured_input_signature[1])
        out = sig(**{n: x for n, x in zip(names, inputs)})
        return [np.asarray(out[k]) for k in sorted(out)]

    # -- lamb.source.base.Loaded ------------------------------------------------------------------

    def inputs(self) -> list[InputSpec]:
        """The inputs, named as the converted model's signature will name them (channels last)."""
        import tensorflow as tf

        specs: list[InputSpec] = []
        if self.is_keras:
            for i, tensor in enumerate(self.model.inputs):
                shape = tensor.shape
                dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
                specs.append(InputSpec(clean_name(tensor.name, f"input_{i}"), dims, tf.as_dtype(tensor.dtype)))
        else:
            _, kwargs = self.signature.structured_input_signature
            for name in sorted(kwargs):
                spec = kwargs[name]
                specs.append(InputSpec(clean_name(name, name), spec.shape.as_list(), spec.dtype))
        seen: set[str] = set()
        for i, spec in enumerate(specs):
            if spec.name in seen:
                spec.name = f"{spec.name}_{i}"
            seen.add(spec.name)
        return specs

    def outputs(self) -> list[mf.TensorSpec]:
        """The outputs, named as the model names them, in its order (-1 for an open dimension)."""

        def dims(shape: Any) -> list[int]:
            shape = shape.as_list() if hasattr(shape, "as_list") else list(shape)
            return [-1 if d is None else int(d) for d in shape]

        if self.is_keras:
            tensors = list(self.model.outputs)
            names = list(getattr(self.model, "output_names", None) or [f"output_{i}" for i in range(len(tensors))])
            return [mf.TensorSpec(n, dims(t.shape), "float32") for n, t in zip(names, tensors)]
        outs = self.signature.structured_outputs
        return [mf.TensorSpec(n, dims(outs[n].shape), outs[n].dtype.name) for n in sorted(outs)]

    def preprocessing(self, given: str | None) -> tuple[str, str, str | None]:
        if given is not None:
            return given, "given", preprocess_evidence(self.model, given) if self.is_keras else None
        if self.is_keras:
            return (*infer_preprocess(self.model), None)
        return "none", f"{NOT_INFERRED}: a bare SavedModel has no layers to inspect; pass --preprocess", None

    def as_format(self, fmt: str) -> AsGiven | None:
        return None  # every model format's converter takes a Keras model or a SavedModel

    def reference_outputs(
        self, arrays: list[Any], start_runner: StartRunner, on_batch: Callable[[int], None] | None = None,
    ) -> ReferenceOutputs:
        """The model run here, in this process, batched (TensorFlow's C++ chatter captured)."""
        from lamb import tflog

        with tflog.capture_fd2():
            outputs = predict_batched(self, arrays, on_batch)
        what = "the Keras model" if self.is_keras else "the SavedModel"
        return ReferenceOutputs(outputs, "keras", f"{what} {self.source.name} ({self.loader})")


KERAS_BATCH = 32  # Keras runs batched; 32 bounds memory on a 299x299 model (~1 GB of activations)


def predict_batched(loaded: LoadedModel, inputs: list[Any], on_batch: Callable[[int], None] | None = None) -> list[Any]:
    """The source model's outputs, in its own output order, KERAS_BATCH samples at a time;
    ``on_batch(n)`` after each batch of ``n`` samples."""
    import numpy as np

    n = len(inputs[0])
    if loaded.is_keras:
        # predict() runs a traced graph: ~25 % faster than eager calls on Xception, same numbers.
        callbacks = [_batch_callback(loaded, n, on_batch)] if on_batch is not None else None
        out = loaded.model.predict(
            inputs[0] if len(inputs) == 1 else list(inputs), batch_size=KERAS_BATCH, verbose=0, callbacks=callbacks
        )
        if isinstance(out, dict):
            names = list(getattr(loaded.model, "output_names", None) or [])
            names = names if sorted(names) == sorted(out) else list(out)
            return [np.asarray(out[k]) for k in names]
        return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]
    chunks: list[list[Any]] = []
    for start in range(0, n, KERAS_BATCH):
        chunks.append(loaded.predict(*[x[start : start + KERAS_BATCH] for x in inputs]))
        if on_batch is not None:
            on_batch(min(KERAS_BATCH, n - start))
    return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]


def _batch_callback(loaded: LoadedModel, n: int, on_batch: Callable[[int], None]) -> Any:
    """A predict() callback, from the framework that built the model (Keras 3 or tf_keras)."""
    import importlib

    callbacks = importlib.import_module("tf_keras.callbacks" if loaded.loader == "tf_keras" else "keras.callbacks")
    done = [0]

    def batch_end(batch: int, logs: Any = None) -> None:
        step = min(KERAS_BATCH, n - done[0])
        done[0] += step
        on_batch(step)

    return callbacks.LambdaCallback(on_predict_batch_end=batch_end)


def _load(source: Path, source_format: str, allow_unsafe_lambda: bool) -> LoadedModel:
    from lamb import tflog

    tflog.quiet_tensorflow()
    if source_format == "savedmodel":
        return _load_savedmodel(source)

    errors: dict[str, BaseException] = {}
    try:
        return LoadedModel(_load_keras3(source, allow_unsafe_lambda), "keras", source_format, source)
    except _LOADER_ERRORS as exc:
        if not allow_unsafe_lambda and "safe_mode" in str(exc):
            # Keras 3's safe mode found Python code the scan above missed: never retry it elsewhere.
            raise _lambda_refused("found by Keras 3's safe mode") from exc
        errors["keras"] = exc
    try:
        model = _load_tf_keras(source, allow_unsafe_lambda)
    except _LOADER_ERRORS as exc:
        errors["tf_keras"] = exc
    else:
        reason = _first_line(errors["keras"])
        return LoadedModel(
            model, "tf_keras", source_format, source, fallback_reason=reason,
            notes=[f"loaded with tf_keras, which reads Keras-2 files whole: {_why_keras2(errors['keras'])}"],
        )
    raise _explain_load_failure(source, errors)


def _why_keras2(exc: BaseException) -> str:
    """Why Keras 3 could not read a Keras-2 file, in words (its own error is a page of config)."""
    text = str(exc)
    if "TFOpLambda" in text or "SlicingOpLambda" in text:
        return "its graph holds TensorFlow ops (TFOpLambda: preprocess_input or tf.math calls), which Keras 3 does not rebuild"
    layer = re.search(r"deserializing class '(\w+)'", text)
    if layer:
        return f"Keras 3 does not accept the Keras-2 configuration of its {layer.group(1)} layers"
    return f"Keras 3 said: {_shorten(_first_line(exc), 100)}"


def _lambda_refused(which: str) -> ModelLoadError:
    return ModelLoadError(
        f"the model has Lambda layer(s) holding Python code ({which}), which safe loading refuses "
        "because loading runs that code",
        "if you trust where the file came from, pass --allow-unsafe-lambda "
        "(allow_unsafe_lambda=True); otherwise rebuild the model without Lambda layers",
    )


def _load_keras3(source: Path, allow_unsafe_lambda: bool):
    import keras

    return keras.saving.load_model(source, compile=False, safe_mode=not allow_unsafe_lambda)


def _load_tf_keras(source: Path, allow_unsafe_lambda: bool):
    import tf_keras

    kwargs: dict[str, Any] = {"compile": False}
    if source.suffix.lower() == ".keras":
        kwargs["safe_mode"] = not allow_unsafe_lambda
    return tf_keras.models.load_model(source, **kwargs)


def _load_savedmodel(source: Path) -> LoadedModel:
    import tensorflow as tf

    notes: list[str] = []
    fallback = None
    if (source / "keras_metadata.pb").is_file():
        try:
            return LoadedModel(_load_tf_keras(source, False), "tf_keras", "savedmodel", source)
        except _LOADER_ERRORS as exc:
            fallback = _first_line(exc)
            notes.append(f"tf_keras could not rebuild the Keras layers ({_shorten(fallback)}); using the SavedModel's graph")
    try:
        obj = tf.saved_model.load(str(source))
    except (*_LOADER_ERRORS, tf.errors.OpError) as exc:
        raise ModelLoadError(
            f"{source} is not a loadable SavedModel ({_shorten(_first_line(exc))})",
            "save it again with `model.export(DIR)` (Keras 3) or `tf.saved_model.save(model, DIR)`",
        ) from exc
    signatures = getattr(obj, "signatures", {})
    if "serving_default" not in signatures:
        have = ", ".join(sorted(signatures)) or "none"
        raise ModelLoadError(
            f"the SavedModel in {source} has no serving_default signature (it has: {have})",
            "export it with `model.export(DIR)` or `tf.saved_model.save(model, DIR, signatures=...)`",
        )
    return LoadedModel(obj, "tf.saved_model", "savedmodel", source, fallback_reason=fallback, notes=notes)


_UNKNOWN_PATTERNS = (
    re.compile(r"Unknown (?:layer|object|activation|loss|metric|optimizer|regularizer|constraint|initializer)[^:]*: '?([^'\s.]+)'?"),
    re.compile(r"Could not locate (?:class|function) '([^']+)'"),
)


def _explain_load_failure(source: Path, errors: dict[str, BaseException]) -> ModelLoadError:
    names: list[str] = []
    for exc in errors.values():
        text = str(exc)
        for pattern in _UNKNOWN_PATTERNS:
            for name in pattern.findall(text):
                if name not in names and name != "TFOpLambda":
                    names.append(name)
    primary = errors.get("keras") or next(iter(errors.values()))
    if names and _h5_written_by_keras3(source) and all(_is_keras3_op(n) for n in names):
        # A Keras 3 bug, not the user's: its legacy .h5 writer stores keras.ops calls in the graph
        # (e.g. preprocess_input's TrueDivide/Subtract) as layers its .h5 reader cannot rebuild.
        err = ModelLoadError(
            f"Keras 3 cannot read back this .h5: its graph calls keras.ops ({', '.join(names)}), which "
            "Keras 3's .h5 format does not restore",
            "save the model in the native format instead: `model.save('model.keras')`, and convert that",
        )
    elif names:
        err = ModelLoadError(
            f"the model uses custom layers or objects lamb cannot build: {', '.join(names)}",
            "lamb loads models without your Python code; rebuild the model from built-in layers, or "
            "export a SavedModel directory (`model.export(DIR)`), which carries the computation itself",
        )
    elif isinstance(primary, OSError) or "truncat" in str(primary).lower():
        err = ModelLoadError(
            f"{source} could not be read ({_shorten(_first_line(primary))})",
            "the file is probably truncated or damaged; save or copy it again",
        )
    else:
        err = ModelLoadError(
            f"neither Keras 3 nor tf_keras could load {source.name}: {_shorten(_first_line(primary))}",
            "run with --verbose for the loaders' full errors",
        )
    err.__cause__ = primary
    return err


def _h5_written_by_keras3(source: Path) -> bool:
    if source.suffix.lower() not in (".h5", ".hdf5"):
        return False
    import h5py

    with h5py.File(source, "r") as f:
        version = f.attrs.get("keras_version", b"")
    version = version.decode() if isinstance(version, bytes) else str(version)
    return version.startswith("3.")


def _is_keras3_op(name: str) -> bool:
    from keras.src import ops

    return any(isinstance(getattr(module, name, None), type) for module in (ops.numpy, ops.math, ops.nn, ops.core, ops.image))


def _first_line(exc: BaseException | str) -> str:
    """The first sentence of an error: loader messages go on for paragraphs after it."""
    text = str(exc).strip()
    if not text:
        return exc.__class__.__name__
    line = text.splitlines()[0].strip()
    sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0]
    return sentence.rstrip(".")


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
