"""The manifest: the one file that carries state from step to step.

``lamb convert`` writes ``<stem>.lamb.json`` next to ``<stem>.tflite``; ``lamb verify`` adds its
verdict; ``lamb package`` reads all of it and ships a trimmed copy (``lamb.json``) beside the
handler. Only this module reads or writes the file.

Paths inside the manifest are stored relative to the manifest's folder when they lie below it, so
a folder of ``model.tflite`` + ``model.lamb.json`` can be moved as a unit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb.errors import ManifestError

SCHEMA_VERSION = 1
SUFFIX = ".lamb.json"
#: The name of the manifest copy that ships inside an artifact, beside the handler.
ARTIFACT_MANIFEST = "lamb.json"

PREPROCESS_MODES = ("xception", "caffe", "torch", "scale", "none")
QUANTIZE_MODES = ("float32", "float16", "dynamic", "int8")


@dataclass
class TensorSpec:
    """One input or output of a model: what the interpreter reports for it."""

    name: str
    shape: list[int]  # -1 for a dimension the model leaves open (batch, usually)
    dtype: str  # numpy dtype name: "float32", "int8", "uint8", ...
    # For quantized tensors: real = scale * (q - zero_point). None for float tensors.
    scale: float | None = None
    zero_point: int | None = None


def format_shape(shape: Any) -> str:
    """``(None, 224, 224, 3)``: a shape as Keras prints it, ``None`` for an open dimension (error messages)."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


@dataclass
class Verification:
    """What ``lamb verify`` found, written back so ``lamb package`` can trust (or refuse) it."""

    passed: bool
    tflite_sha256: str  # the .tflite that was verified; package refuses if the file changed since
    runtime_lib: str  # "ai-edge-litert" | "tflite-runtime"
    runtime_version: str
    samples: int  # seeded random inputs
    images: int  # real images used
    skipped_images: int
    tolerances: dict[str, float]
    metrics: list[dict[str, Any]]  # one dict per output: name, max_abs, max_rel, mean_abs, cosine, top1, ...
    failures: list[str] = field(default_factory=list)  # one sentence per failed check
    error: str | None = None  # set when the runtime could not run the model at all


@dataclass
class Manifest:
    """Everything later steps need to know about a converted model."""

    tflite: str  # path of the .tflite (relative to the manifest's folder when below it)
    tflite_sha256: str
    tflite_bytes: int
    source: str  # path of the Keras model it came from
    source_sha256: str | None  # None for a SavedModel directory (hash of its saved_model.pb otherwise)
    source_format: str  # "h5" | "keras" | "savedmodel"
    source_bytes: int
    loader: str  # "keras" | "tf_keras" | "tf.saved_model"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    quantization: str  # one of QUANTIZE_MODES
    preprocess: str  # one of PREPROCESS_MODES
    preprocess_note: str | None = None  # why this mode: "inferred from ...", "given", "no evidence; ..."
    labels: list[str] | None = None
    parameters: int | None = None
    requires_flex: bool = False  # needs the Flex delegate (SELECT_TF_OPS): slim runtimes cannot run it
    flex_ops: list[str] = field(default_factory=list)
    calibration: dict[str, Any] | None = None  # int8: {"dir": ..., "images": N, "io_dtype": "float32"}
    versions: dict[str, str] = field(default_factory=dict)  # lamb, tensorflow, keras, tf_keras
    verification: Verification | None = None
    # `lamb convert --quantize auto`: the comparison that chose this model (CompareReport.summary()).
    comparison: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    # -- paths -------------------------------------------------------------------------------

    def tflite_path(self, manifest_path: Path) -> Path:
        """The .tflite this manifest describes, resolved against the manifest's folder."""
        return _resolve(manifest_path, self.tflite)

    def source_path(self, manifest_path: Path) -> Path:
        return _resolve(manifest_path, self.source)

    # -- (de)serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ManifestError(
                f"the manifest has schema version {version!r}; this lamb reads version {SCHEMA_VERSION}",
                "re-run `lamb convert` with this lamb to write a fresh manifest",
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ManifestError(
                f"the manifest has fields this lamb does not know: {', '.join(unknown)}",
                "re-run `lamb convert` with this lamb to write a fresh manifest",
            )
        data["inputs"] = [TensorSpec(**t) for t in data.get("inputs", [])]
        data["outputs"] = [TensorSpec(**t) for t in data.get("outputs", [])]
        if data.get("verification") is not None:
            data["verification"] = Verification(**data["verification"])
        try:
            return cls(**data)
        except TypeError as exc:  # a required field is missing
            raise ManifestError(
                f"the manifest is incomplete ({exc})", "re-run `lamb convert` to write a fresh manifest"
            ) from None


# -- files ------------------------------------------------------------------------------------


def manifest_path_for(tflite: Path) -> Path:
    """``model.tflite`` -> ``model.lamb.json`` in the same folder."""
    return tflite.with_name(tflite.stem + SUFFIX)


def read(path: Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"no manifest at {path}", "run `lamb convert MODEL` first; it writes one next to the .tflite")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(
            f"{path} is not a readable lamb manifest ({exc.__class__.__name__})",
            "re-run `lamb convert` to write a fresh manifest",
        ) from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path} is not a lamb manifest", "re-run `lamb convert` to write a fresh manifest")
    return Manifest.from_dict(data)


def write(manifest: Manifest, path: Path) -> Path:
    """Write atomically: a reader never sees half a manifest."""
    text = json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(Path(path), text.encode("utf-8"))
    return Path(path)


def find(directory: Path | None = None) -> Path:
    """The one manifest in ``directory`` (default: the current directory)."""
    directory = Path(directory or Path.cwd())
    found = sorted(directory.glob("*" + SUFFIX))
    if not found:
        raise ManifestError(
            f"no lamb manifest (*{SUFFIX}) in {directory}",
            "run `lamb convert MODEL` here first, or name the model files explicitly",
        )
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ManifestError(f"several manifests in {directory}: {names}", "name the one you mean with --manifest")
    return found[0]


def relative_to_manifest(manifest_path: Path, target: Path) -> str:
    """Store ``target`` relative to the manifest's folder when below it, else absolute."""
    base = Path(manifest_path).resolve().parent
    target = Path(target).resolve()
    try:
        return target.relative_to(base).as_posix()
    except ValueError:
        return str(target)


def _resolve(manifest_path: Path, stored: str) -> Path:
    p = Path(stored)
    return p if p.is_absolute() else Path(manifest_path).resolve().parent / p


# -- small file helpers every step uses ---------------------------------------------------------


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename.

    An interrupted write leaves the old file (or none) in place, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_output(path: Path) -> Path:
    """A temp path beside ``path`` for a writer that needs a filename (zip, converter output).

    The caller writes to the returned path and then calls ``os.replace(tmp, path)``; on failure it
    unlinks the temp path. Kept beside the target so the rename never crosses filesystems.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)
