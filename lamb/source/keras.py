"""Keras model files as a source: a Keras 3 ``.keras`` zip or an HDF5 ``.h5`` (Keras 3 or tf.keras).

The file is checked before anything loads: its first bytes (not only its name), a whole model and
not weights alone, datasets that declare no more than the file could hold, Lambda layers holding
Python code (refused unless allowed). Loading is ``lamb.source.tf_load``'s, which imports Keras or
tf_keras, and so TensorFlow, only then.
"""

from __future__ import annotations

import importlib.util
import zipfile
import zlib
from pathlib import Path
from typing import Any

from lamb import files
from lamb import manifest as mf
from lamb.errors import InputError, ModelLoadError
from lamb.records import loads
from lamb.source.tf_load import LoadedModel, _first_line, _lambda_refused, _load


class KerasSource:
    """A Keras model file (``lamb.source.base.Source``)."""

    title = "Keras model"
    readers: tuple[str, ...] = ("tensorflow", "keras", "tf-keras")  # the distributions whose versions the manifest records

    def __init__(self, path: Path, kind: str):
        self.path = Path(path)
        self.kind = kind  # "h5" | "keras"

    @property
    def stem(self) -> str:
        return self.path.stem

    def files(self) -> list[Path]:
        return [self.path]

    def converts_to(self, fmt: str) -> bool:
        return True  # every model format's converter starts from a Keras model

    def sha256(self) -> str | None:
        return mf.sha256_file(self.path)

    def load(self, *, allow_unsafe_lambda: bool = False) -> LoadedModel:
        return load_keras_model(self.path, allow_unsafe_lambda=allow_unsafe_lambda)


HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"

# What reads a Keras source: pyproject's `keras` extra. The core install (ONNX sources) has none of them.
KERAS_EXTRA_MODULES = ("tensorflow", "keras", "tf_keras", "h5py")
KERAS_EXTRA_INSTALL = "pip install 'lamb[keras]'"

_SAVE_WHOLE_MODEL_HINT = (
    "save the whole model, not just its weights: `model.save('model.keras')` (Keras 3) or "
    "`model.save('model.h5')` (tf.keras); `save_weights` files hold no architecture"
)


def detect_format(source: Path) -> str:
    """``h5`` | ``keras`` | ``savedmodel``; raises for anything lamb cannot read."""
    source = Path(source)
    if not source.exists():
        raise InputError(
            f"no model at {source}",
            "check the path; lamb reads a Keras .h5 or .keras file, a SavedModel folder, or an exported .onnx",
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
        f"{source} is not a model lamb reads (neither an HDF5 .h5, a Keras .keras nor an .onnx file)",
        "lamb reads a Keras .h5 or .keras file, a SavedModel folder, or an exported .onnx (PyTorch: torch.onnx.export)",
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
        return _config(source, raw)
    if source_format == "keras":
        try:
            with zipfile.ZipFile(source) as z:
                names = set(z.namelist())
                if "config.json" not in names:
                    raise ModelLoadError(f"{source} holds no model config (not a whole .keras model)", _SAVE_WHOLE_MODEL_HINT)
                if z.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                    raise _config_too_large(source)
                return _config(source, z.read("config.json"))
        # a damaged zip, a damaged deflate stream, an encrypted entry, a method zipfile lacks
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
            raise ModelLoadError(
                f"{source} is a damaged .keras (zip) file ({_first_line(exc)})",
                "the file is probably truncated; save or copy it again",
            ) from exc
    return None


# A model's config is its layers' settings: the demo model's (models/demo/clothing.h5) is 9.4 KB
# and 8 levels deep. Keras parses and walks it recursively (Python gives up near 1,000 levels),
# so a config past these bounds is refused before Keras sees it.
MAX_CONFIG_BYTES = 64 * 2**20
MAX_CONFIG_DEPTH = 200


def _config_too_large(source: Path) -> ModelLoadError:
    return ModelLoadError(f"{source}'s model config is larger than {MAX_CONFIG_BYTES // 2**20} MB", _SAVE_WHOLE_MODEL_HINT)


def _config(source: Path, raw: bytes | str) -> Any:
    if len(raw) > MAX_CONFIG_BYTES:
        raise _config_too_large(source)
    try:
        return loads(raw, MAX_CONFIG_DEPTH)
    except ValueError as exc:  # JSON's own errors, text that is not UTF-8, or too deep
        raise ModelLoadError(f"{source}'s model config is not JSON Keras reads ({_first_line(exc)})", _SAVE_WHOLE_MODEL_HINT) from None


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




def save_from_memory(model: Any, folder: Path) -> Path | None:
    """A Keras model in memory saved in ``folder`` (atomically): Keras 3 writes ``<name>.keras``; a
    tf.keras (Keras 2) model writes the ``.h5`` Keras 2 reads back. None for any other object."""
    if not (hasattr(model, "save") and hasattr(model, "layers")):
        return None
    kind = type(model).__module__.split(".")[0]
    path = folder / f"{model.name}{'.h5' if kind in ('tf_keras', 'tensorflow') else '.keras'}"
    tmp = files.temp_beside(path, prefix=f".{path.stem}-", suffix=path.suffix)  # Keras insists on the suffix
    try:
        with files.writing(path):
            model.save(str(tmp))
            files.publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
