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

import importlib.util
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb.errors import InputError, ModelLoadError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"

# What the loaders raise for a file they cannot make sense of. Anything else is a bug in lamb and
# must surface as a traceback.
_LOADER_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OSError, NotImplementedError, IndexError)

# What reads a Keras source: pyproject's `keras` extra. The core install (ONNX sources) has none of them.
KERAS_EXTRA_MODULES = ("tensorflow", "keras", "tf_keras", "h5py")
KERAS_EXTRA_INSTALL = "pip install 'lamb[keras]'"

_SAVE_WHOLE_MODEL_HINT = (
    "save the whole model, not just its weights: `model.save('model.keras')` (Keras 3) or "
    "`model.save('model.h5')` (tf.keras); `save_weights` files hold no architecture"
)


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


def detect_format(source: Path) -> str:
    """``h5`` | ``keras`` | ``savedmodel``; raises for anything lamb cannot read."""
    source = Path(source)
    if not source.exists():
        raise InputError(
            f"no model at {source}",
            "check the path; lamb converts a Keras .h5 or .keras file, a SavedModel directory or an exported .onnx file",
        )
    if source.is_dir():
        if (source / "saved_model.pb").is_file() or (source / "saved_model.pbtxt").is_file():
            return "savedmodel"
        raise InputError(
            f"{source} is a directory but not a SavedModel (no saved_model.pb in it)",
            "pass the .h5/.keras file itself, or the folder that `model.export()`/`tf.saved_model.save` wrote",
        )
    size = source.stat().st_size
    if size == 0:
        raise ModelLoadError(f"{source} is empty (0 bytes)", "the save or copy was interrupted; save the model again")
    with open(source, "rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC:
        return "h5"
    if head.startswith(ZIP_MAGIC):
        return "keras"
    if source.suffix.lower() in (".h5", ".hdf5", ".keras"):
        kind = "HDF5" if source.suffix.lower() != ".keras" else "Keras zip"
        raise ModelLoadError(
            f"{source} is not an {kind} file (its first bytes are not the {kind} signature)",
            "the file is corrupt or something else renamed; save the model again with `model.save(...)`",
        )
    raise ModelLoadError(
        f"{source} is neither an HDF5 (.h5) nor a Keras (.keras) model file",
        "lamb converts a Keras .h5 or .keras file or a SavedModel directory",
    )


def read_model_config(source: Path, source_format: str) -> dict | None:
    """The model's architecture JSON, read without building anything (None for a SavedModel)."""
    if source_format == "h5":
        import h5py

        try:
            with h5py.File(source, "r") as f:
                raw = f.attrs.get("model_config")
                keys = set(f.keys())
                _check_declared_sizes(f, source)
        except OSError as exc:
            raise ModelLoadError(
                f"{source} is a damaged HDF5 file ({_first_line(exc)})",
                "the file is probably truncated (an interrupted save or download); save or copy it again",
            ) from exc
        if raw is None:
            what = "weights only (no model_config)" if keys else "no model in it"
            raise ModelLoadError(f"{source} holds {what}, not a whole model", _SAVE_WHOLE_MODEL_HINT)
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        return json.loads(raw)
    if source_format == "keras":
        try:
            with zipfile.ZipFile(source) as z:
                names = set(z.namelist())
                if "config.json" not in names:
                    raise ModelLoadError(f"{source} holds no model config (not a whole .keras model)", _SAVE_WHOLE_MODEL_HINT)
                return json.loads(z.read("config.json"))
        except zipfile.BadZipFile as exc:
            raise ModelLoadError(
                f"{source} is a damaged .keras (zip) file ({_first_line(exc)})",
                "the file is probably truncated; save or copy it again",
            ) from exc
    return None


# HDF5 lets a file declare a dataset of any size without storing it (unallocated chunks read as
# zeros), and Keras allocates every weight whole before reading it: a few-KB file can ask for
# terabytes. Keras never compresses weights, so what a model declares is about what it stores;
# this leaves compressed files room and refuses only what could not be a model's weights.
_DECLARED_SLACK = 16  # declared bytes per stored byte
_DECLARED_FLOOR = 64 * 2**20  # small files may declare this much whatever they store


def _check_declared_sizes(f: Any, source: Path) -> None:
    """Refuse, before any allocation, an .h5 whose datasets declare far more than the file holds."""
    import h5py

    declared = [0]
    largest: list[Any] = [None, 0]

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            size = int(obj.size or 0) * int(obj.dtype.itemsize)
            declared[0] += size
            if size > largest[1]:
                largest[:] = [name, size]

    f.visititems(visit)
    stored = source.stat().st_size
    if declared[0] > stored * _DECLARED_SLACK + _DECLARED_FLOOR:
        from lamb.units import human_bytes

        raise ModelLoadError(
            f"{source} declares {human_bytes(declared[0])} of data in a {human_bytes(stored)} file "
            f"({largest[0]!r} alone is {human_bytes(largest[1])}): loading it would allocate all of that",
            "the file is damaged or not a saved model; save the model again with `model.save(...)`",
        )


def require_keras_extra(source: Path) -> None:
    """ModelLoadError naming the install command when this install of lamb cannot read Keras models."""
    missing = [name for name in KERAS_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        # One line, the command in it: the user's next step is that command, nothing else.
        raise ModelLoadError(
            f"{Path(source).name} is a Keras model and this install of lamb reads ONNX models only "
            f"({', '.join(missing)} not installed): {KERAS_EXTRA_INSTALL}"
        )


def find_python_lambdas(config: Any) -> list[str]:
    """Names of Lambda layers whose function is Python bytecode (what safe mode refuses)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda" and isinstance(node.get("config"), dict):
                cfg = node["config"]
                fn = cfg.get("function")
                # Keras 2 stores bytecode with function_type "lambda"; Keras 3 wraps it as
                # {"class_name": "__lambda__"}. A plain registered function name is safe.
                python_code = cfg.get("function_type") == "lambda" or (
                    isinstance(fn, dict) and fn.get("class_name") == "__lambda__"
                ) or isinstance(fn, (list, tuple))
                if python_code:
                    found.append(str(cfg.get("name") or node.get("name") or "lambda"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return found


def load_keras_model(source: Path, *, allow_unsafe_lambda: bool = False) -> LoadedModel:
    """Load ``source`` with the first loader that reads it whole; raise a ``LambError`` otherwise."""
    source = Path(source)
    source_format = detect_format(source)
    require_keras_extra(source)
    config = read_model_config(source, source_format)
    # Checked here, not left to Keras 3's safe mode: tf_keras (the fallback) runs the bytecode of
    # a Keras-2 .h5 Lambda layer without asking.
    lambdas = find_python_lambdas(config) if config is not None else []
    if lambdas and not allow_unsafe_lambda:
        raise _lambda_refused(", ".join(lambdas))
    loaded = _load(source, source_format, allow_unsafe_lambda)
    loaded.unsafe_lambdas = lambdas
    return loaded


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
