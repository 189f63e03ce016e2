"""The manifest: the one file that carries state from step to step.

``lamb convert`` writes ``<stem>.lamb.json`` next to the converted model (``<stem>.<format suffix>``);
``lamb verify`` adds its
verdict; ``lamb package`` reads all of it, ships a trimmed copy (``lamb.json``) beside the
handler, and records what it built (``PackageRecord``) in both. Only this module reads or writes
these files; ``read_shipped`` reads an artifact's copy without unpacking the artifact.

Paths inside the manifest are stored relative to the manifest's folder, so a folder of
model file + ``model.lamb.json`` can be moved as a unit, and a folder shared with the source
model it came from (``../models/model.h5``) still verifies elsewhere.

Version 2 (``SCHEMA_VERSION``) describes the model generically (``ModelEntry``: file, format,
sha256, bytes, external data) and names the runtime library (``runtime_lib``). Version-1
manifests, and the ``lamb.json`` inside version-1 artifacts, are read through ``migrate_v1``.
Every field's type is checked on read (``_build``): a hand-edited manifest gets one sentence
naming the field, never a TypeError.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb import files, layout
from lamb.errors import ManifestError, ManifestTooLarge
from lamb.files import sha256_file as sha256_file  # every step hashes through the manifest's name
from lamb.records import TooDeep, build, check, loads, read_at_most

SCHEMA_VERSION = 2
SUFFIX = ".lamb.json"

PREPROCESS_MODES = ("xception", "caffe", "torch", "scale", "none")
# What a model's output is: lamb.handler.lambkit.heads.HEADS, which answers from it (the handler
# imports nothing from lamb; tests/test_manifest.py checks they agree).
HEADS = ("softmax", "logits", "binary-logit", "binary-probability")
# How a preprocessing note starts when nothing in the model showed the mode ("none" recorded).
PREPROCESS_NOT_INFERRED = "not inferred"


@dataclass
class TensorSpec:
    """One input or output of a model: what the runtime library reports for it."""

    name: str
    shape: list[int]  # -1 for a dimension the model leaves open (batch, usually)
    dtype: str  # numpy dtype name: "float32", "int8", "uint8", ...
    # For quantized tensors: real = scale * (q - zero_point). None for float tensors.
    scale: float | None = None
    zero_point: int | None = None
    layout: str | None = None  # an image input's "NHWC" | "NCHW"; None means NHWC


def preprocess_unconfirmed(manifest: Manifest) -> bool:
    """"none" recorded because nothing showed the mode, and no labelled images showed it right since."""
    if manifest.preprocess != "none" or not (manifest.preprocess_note or "").startswith(PREPROCESS_NOT_INFERRED):
        return False
    accuracy = manifest.verification.accuracy if manifest.verification is not None else None
    return not (accuracy and accuracy.get("passed") and accuracy.get("preprocess") == "none")


def unlabelled_classifier(manifest: Manifest) -> bool:
    """A classifier (an output of one score per class) recorded without class labels."""
    return not manifest.labels and any(len(o.shape) == 2 and o.shape[1] > 1 for o in manifest.outputs)


def format_shape(shape: Any) -> str:
    """``(None, 224, 224, 3)``: a shape as Keras prints it, ``None`` for an open dimension (error messages)."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


@dataclass
class ModelEntry:
    """The converted model file: what ``lamb.runtime_lib`` runs it with, and how to know it again."""

    file: str  # the manifest's: relative to its folder when below it; the artifact's: its name at the root
    format: str  # a model format of lamb.runtime_lib
    sha256: str
    bytes: int
    # Files the model loads from beside itself (an ONNX model's external weights); they ship with it.
    external_data: list[str] = field(default_factory=list)
    external_sha256: dict[str, str] = field(default_factory=dict)  # each external data file's, by name


@dataclass
class Verification:
    """What ``lamb verify`` found, written back so ``lamb package`` can trust (or refuse) it."""

    passed: bool
    model_sha256: str  # the model file that was verified; package refuses if the file changed since
    runtime_lib: str  # the runtime library's distribution: "ai-edge-litert", ...
    runtime_lib_version: str
    samples: int  # seeded random inputs
    images: int  # real images used
    skipped_images: int
    tolerances: dict[str, float]
    metrics: list[dict[str, Any]]  # one dict per output: name, max_abs, max_rel, mean_abs, cosine, top1, ...
    failures: list[str] = field(default_factory=list)  # one sentence per failed check
    error: str | None = None  # set when the runtime library could not run the model at all
    verdict: str | None = None  # "pass" | "pass with warning" | "not enough evidence" | "fail"
    warnings: list[str] = field(default_factory=list)
    # --labeled-images: top-1/top-k accuracy with Wilson bounds, per mode and class (lamb.verify.accuracy)
    accuracy: dict[str, Any] | None = None
    # What it ran on, so that `lamb package` can verify again on the same inputs when it ships
    # another release: the random samples' seed, and the images folder (relative to the manifest's).
    seed: int | None = None
    images_dir: str | None = None


@dataclass
class SmokeResult:
    """What happened when the built function answered a sample image in a fresh subprocess."""

    ran: bool
    passed: bool
    stand_in: bool  # True: the host cannot run the target's wheels; a host build was run instead
    label: str  # one sentence saying exactly what was run
    python: str = ""  # the target the smoke run's wheels were resolved for
    init_ms: float | None = None  # cold start: interpreter start + handler import + model load
    invoke_ms: float | None = None
    peak_rss_mb: float | None = None
    top: str | None = None  # the top label and score the function answered
    differences: list[str] = field(default_factory=list)  # package versions that differ from the target's
    error: str | None = None
    # One answer per image of smoke_images.SMOKE_IMAGES (every mode and format Pillow decodes):
    # image name -> "cat 0.4100" or the error it answered. All must answer with scores.
    images: dict[str, str] = field(default_factory=dict)
    # The CPU that measured init_ms and invoke_ms (lambkit.cpu.Cpu.as_dict: model, arch, features, isa).
    cpu: dict[str, Any] | None = None


@dataclass
class PackageRecord:
    """What ``lamb package`` built, so invoke, serve and deploy read it instead of guessing it back.

    The artifact's own ``lamb.json`` carries the first group of fields. The manifest beside the
    model carries them all: a zip cannot hold its own sha256, nor the result of a smoke run made
    after it was written, so those stay None in the shipped copy.
    """

    target: str  # "python3.12-x86_64"
    runtime: str  # the Lambda runtime: "python3.12"
    python: str  # "3.12"
    arch: str  # Lambda's name: "x86_64" | "arm64"
    os: str  # "Amazon Linux 2023"
    glibc: str  # "2.34"
    format: str  # "zip" | "image"
    handler: str  # Lambda's handler setting: layout.HANDLER
    runtime_lib: str  # the runtime library that ships (its distribution)
    runtime_lib_version: str
    installed: dict[str, str]  # distribution -> version, every package in the artifact
    lamb_version: str
    # The handler's backend for the runtime library (its record's ``handler_backend``): the function
    # loads the model with it. "" in artifacts built before it was recorded (their format's one).
    handler_backend: str = ""
    # The ELF audit against the target's system (lamb.release.audit.AuditReport.record()):
    # passed, newest GLIBC/GLIBCXX needed against what the target has, libraries resolved.
    audit: dict[str, Any] | None = None
    # The model pre-optimized for one CPU by the release that ships (lambkit.backends.ort): file,
    # data (its weights' file), isa (lambkit.cpu.Cpu.isa), runtime_lib_version, max_rel against
    # the plain model.
    optimized: dict[str, Any] | None = None
    # -- only in the manifest beside the model (see the class docstring) --
    artifact: str | None = None  # relative to the manifest's folder when below it
    sha256: str | None = None  # of the zip; None for an image context
    zipped_bytes: int | None = None
    unzipped_bytes: int | None = None
    smoke: SmokeResult | None = None

    @property
    def key(self) -> str | None:
        """How the manifest's ``packages`` knows this artifact: a zip by its sha256, an image
        context (a folder, no single hash) by its path."""
        return self.sha256 or self.artifact

    def artifact_path(self, manifest_path: Path) -> Path | None:
        return None if self.artifact is None else _resolve(manifest_path, self.artifact)


@dataclass
class Manifest:
    """Everything later steps need to know about a converted model."""

    model: ModelEntry
    source: str  # path of the source model it came from, relative to the manifest's folder
    source_sha256: str | None  # None for a SavedModel directory (hash of its saved_model.pb otherwise)
    source_format: str  # "h5" | "keras" | "savedmodel" | "onnx" (lamb.source)
    source_bytes: int
    loader: str  # "keras" | "tf_keras" | "tf.saved_model"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    quantization: str  # a mode of the model format (lamb.runtime_lib)
    preprocess: str  # one of PREPROCESS_MODES
    preprocess_note: str | None = None  # why this mode: "inferred from ...", "given", "no evidence; ..."
    labels: list[str] | None = None
    # What the output is (lamb.handler.lambkit.heads): "softmax" | "logits" | "binary-logit" |
    # "binary-probability". None for a model with several outputs, and in manifests written before.
    head: str | None = None
    head_note: str | None = None  # how it was decided: "inferred from ...", "given", "assumed ..."
    parameters: int | None = None
    requires_flex: bool = False  # needs the Flex delegate (SELECT_TF_OPS): slim runtime libraries cannot run it
    flex_ops: list[str] = field(default_factory=list)
    calibration: dict[str, Any] | None = None  # int8: {"dir": ..., "images": N, "io_dtype": "float32"}
    versions: dict[str, str] = field(default_factory=dict)  # lamb, tensorflow, keras, tf_keras
    # `lamb convert --allow-unsafe-lambda` was given for the source with ``source_sha256``: verify
    # loads that same file's Lambda layers without asking again.
    allow_unsafe_lambda: bool = False
    # What the converter recorded of itself: {"converter": "tf2onnx", "tf2onnx": "1.17.0", "opset": 17,
    # "quantizer": ..., its settings}, or an ONNX model's own producer and opset. None: nothing to add.
    converter: dict[str, Any] | None = None
    verification: Verification | None = None
    # `lamb convert --quantize auto`: the comparison that chose this model (CompareReport.summary()).
    comparison: dict[str, Any] | None = None
    package: PackageRecord | None = None  # what `lamb package` last built from this model
    # Every artifact built from this model, by ``PackageRecord.key``: packaging an image and then a
    # zip keeps the image's smoke figures. Never shipped (the artifact's copy has its own ``package``).
    packages: dict[str, PackageRecord] = field(default_factory=dict)
    # Where the source was at conversion: the fallback when ``source`` no longer resolves because
    # the folder moved without it. Never shipped (host paths stay on the host).
    source_absolute: str | None = None
    schema_version: int = SCHEMA_VERSION

    # -- paths -------------------------------------------------------------------------------

    def model_path(self, manifest_path: Path) -> Path:
        """The model file this manifest describes, resolved against the manifest's folder."""
        return _resolve(manifest_path, self.model.file)

    def external_data_paths(self, manifest_path: Path) -> list[Path]:
        """The model's external data files, which sit beside it."""
        folder = self.model_path(manifest_path).parent
        return [folder / Path(name).name for name in self.model.external_data]

    def model_files(self, manifest_path: Path, *, as_recorded: bool = True) -> list[Path]:
        """The model file and its external data, each checked before any step reads or ships it: a
        regular file in the manifest's folder, with the sha256 `lamb convert` recorded (ManifestError).
        ``as_recorded=False`` leaves out the hashes (verify judges a changed file as it is, and says so)."""
        folder, hint = Path(manifest_path).resolve().parent, "re-run `lamb convert` to write the model and its manifest again"
        model = files.regular_file_in(folder, self.model_path(manifest_path), "the model", hint)
        data = [files.regular_file_in(folder, p, "the model's external data", hint) for p in self.external_data_paths(manifest_path)]
        recorded = [self.model.sha256, *(self.model.external_sha256.get(name) for name in self.model.external_data)]
        for path, sha256 in zip([model, *data], recorded if as_recorded else []):
            files.check_sha256(path, sha256, hint)
        return [model, *data]

    def source_path(self, manifest_path: Path) -> Path:
        """The source model: relative to the manifest (a shared folder), else where it was."""
        relative = _resolve(manifest_path, self.source)
        if not relative.exists() and self.source_absolute and Path(self.source_absolute).exists():
            return Path(self.source_absolute)
        return relative

    def with_source(self, manifest_path: Path, source: Path) -> Manifest:
        """This manifest naming ``source`` as its source model (both ways, see ``source_path``)."""
        return dataclasses.replace(
            self, source=relative_to_manifest(manifest_path, source), source_absolute=str(Path(source).resolve())
        )

    # -- package records ---------------------------------------------------------------------

    def with_package(self, record: PackageRecord) -> Manifest:
        """This manifest with ``record`` as the last build, kept beside every other artifact's;
        a record of an artifact rebuilt at the same path replaces the old one."""
        kept = {k: r for k, r in self.packages.items() if r.artifact != record.artifact or record.artifact is None}
        if record.key is not None:
            kept[record.key] = record
        return dataclasses.replace(self, package=record, packages=kept)

    def record_of(self, artifact: Path, manifest_path: Path, sha256: str | None = None) -> PackageRecord | None:
        """The record of the artifact at ``artifact`` (and, for a zip, with these bytes), or None."""
        where = Path(artifact).resolve()
        candidates = [*self.packages.values()]
        if self.package is not None and self.package.key not in self.packages:
            candidates.append(self.package)
        for record in reversed(candidates):  # the newest first
            if record.artifact_path(manifest_path) != where:
                continue
            if sha256 is not None and record.sha256 != sha256:
                continue  # rebuilt or changed since: these figures are another build's
            return record
        return None

    # -- (de)serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """A manifest from its JSON form: version 1 migrated, every field's type checked first."""
        data = dict(data)
        version = data.get("schema_version")
        if version == 1:
            data = migrate_v1(data)
        elif version != SCHEMA_VERSION:
            raise ManifestError(
                f"the manifest has schema version {version!r}; this lamb reads versions 1 and {SCHEMA_VERSION}",
                "re-run `lamb convert` with this lamb to write a fresh manifest",
            )
        return build(cls, data, "", ManifestError, _FRESH)


# -- reading: version 1, and every field's type in one place -------------------------------------

_FRESH = "re-run `lamb convert` to write a fresh manifest"

# Version 1 named the model file after the one format it knew; version 2 has a generic model
# entry and names the runtime library everywhere the same.
_V1_MODEL = {"tflite": ("file", str), "tflite_sha256": ("sha256", str), "tflite_bytes": ("bytes", int)}
_V1_VERIFICATION = {"tflite_sha256": "model_sha256", "runtime_version": "runtime_lib_version"}
_V1_PACKAGE = {"tflite_lib": "runtime_lib", "tflite_lib_version": "runtime_lib_version"}


def migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 manifest (or a version-1 artifact's ``lamb.json``) as version 2: the one place
    that knows version 1. Its model was always a .tflite, run by a LiteRT library."""
    data = dict(data)
    model: dict[str, Any] = {"format": "tflite", "external_data": []}
    for old, (new, kind) in _V1_MODEL.items():
        if old not in data:
            raise ManifestError(f"the version-1 manifest has no {old!r}", _FRESH)
        check(data[old], kind, old, ManifestError, _FRESH)
        model[new] = data.pop(old)
    data["model"] = model
    if isinstance(data.get("verification"), dict):
        data["verification"] = _renamed(data["verification"], _V1_VERIFICATION)
        metrics = data["verification"].get("metrics")
        if isinstance(metrics, list):
            data["verification"]["metrics"] = [_renamed(m, {"tflite_name": "model_name"}) if isinstance(m, dict) else m
                                               for m in metrics]
        accuracy = data["verification"].get("accuracy")
        if isinstance(accuracy, dict):
            accuracy = _renamed(accuracy, {"tflite": "converted"})
            for entry in (accuracy.get("converted"), *(accuracy.get("modes") or [])):
                if isinstance(entry, dict) and entry.get("model") == "tflite":
                    entry["model"] = "converted"
            data["verification"]["accuracy"] = accuracy
    if isinstance(data.get("package"), dict):
        data["package"] = _renamed(data["package"], _V1_PACKAGE)
        record = data["package"]
        key = record.get("sha256") or record.get("artifact")
        data["packages"] = {key: record} if isinstance(key, str) else {}
    data["schema_version"] = SCHEMA_VERSION
    return data


def _renamed(record: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names.get(k, k): v for k, v in record.items()}


# -- files ------------------------------------------------------------------------------------


def manifest_path_for(model: Path) -> Path:
    """``model.<suffix>`` (any converted model file) -> ``model.lamb.json`` in the same folder."""
    return model.with_name(model.stem + SUFFIX)


def model_stem(manifest_path: Path) -> str:
    """``model.lamb.json`` -> ``model``: the name artifacts built from it are named after."""
    name = Path(manifest_path).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else Path(name).stem


# A manifest holds labels (convert takes at most 4 MiB, which JSON's escapes can make 6 times
# longer) and package records: far below this. Nothing larger is read, nothing deeper parsed.
MAX_BYTES = 32 * 2**20
MAX_DEPTH = 32


def read(path: Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"no manifest at {path}", "run `lamb convert MODEL` first; it writes one next to the converted model")
    return _parse(lambda: read_at_most(path, MAX_BYTES), f"{path} is not a readable lamb manifest", f"{path} is not a lamb manifest",
                  "re-run `lamb convert` to write a fresh manifest")


def read_shipped(artifact: Path) -> Manifest:
    """The ``lamb.json`` inside an artifact (a zip, an image-context folder or a task root),
    read without unpacking the rest."""
    artifact = Path(artifact)

    def load() -> bytes:
        if artifact.is_dir():
            return read_at_most(artifact / layout.MANIFEST_FILE, MAX_BYTES)
        with zipfile.ZipFile(artifact) as zf, zf.open(layout.MANIFEST_FILE) as f:  # KeyError: no such member
            return f.read(MAX_BYTES + 1)

    return _parse(load, f"{artifact} holds no readable {layout.MANIFEST_FILE}",
                  f"{artifact}'s {layout.MANIFEST_FILE} is not a lamb manifest", "name an artifact that `lamb package` built")


def _parse(load: Callable[[], bytes], unreadable: str, not_ours: str, hint: str) -> Manifest:
    try:
        raw = load()
        if len(raw) > MAX_BYTES:
            raise ManifestTooLarge(f"{unreadable}: it is larger than {MAX_BYTES // 2**20} MB, far more than a lamb manifest holds", hint)
        data = loads(raw, MAX_DEPTH)
    except TooDeep as exc:
        raise ManifestTooLarge(f"{unreadable}: {exc}", hint) from None
    # JSON and Unicode errors are ValueErrors; an encrypted member a RuntimeError, an unknown
    # compression method a NotImplementedError
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as exc:
        raise ManifestError(f"{unreadable} ({exc.__class__.__name__})", hint) from None
    if not isinstance(data, dict):
        raise ManifestError(not_ours, hint)
    return Manifest.from_dict(data)


def package_record(artifact: Path) -> PackageRecord | None:
    """The package record an artifact carries; None for one built before lamb wrote records
    (or not by lamb at all)."""
    try:
        return read_shipped(artifact).package
    except ManifestTooLarge:
        raise
    except ManifestError:
        return None


def write(manifest: Manifest, path: Path) -> Path:
    """Write atomically: a reader never sees half a manifest."""
    text = json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(Path(path), text.encode("utf-8"))
    return Path(path)


def update(path: Path, change: Callable[[Manifest], Manifest]) -> Manifest:
    """The manifest at ``path`` read, changed by ``change`` and written back under a lock: two lamb
    processes changing one manifest at once (two ``lamb package`` runs) both keep their change, where
    each writing back what it read at its start would keep the last one's alone."""
    with files.locked(path):
        manifest = change(read(path))
        write(manifest, path)
    return manifest


def find(directory: Path | None = None, name_it: str = "with --manifest") -> Path:
    """The one manifest in ``directory`` (default: the current directory); ``name_it`` says how the
    command at hand takes a manifest, for when there are several."""
    directory = Path(directory or Path.cwd())
    found = sorted(directory.glob("*" + SUFFIX))
    if not found:
        raise ManifestError(
            f"no lamb manifest (*{SUFFIX}) in {directory}",
            "run `lamb convert MODEL` here first, or name the model files explicitly",
        )
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ManifestError(f"several manifests in {directory}: {names}", f"name the one you mean {name_it}")
    return found[0]


def relative_to_manifest(manifest_path: Path, target: Path) -> str:
    """``target`` relative to the manifest's folder (``../models/model.h5`` too), so a folder
    moved or shared together with what it names still resolves; absolute only when no relative
    path exists (another drive on Windows)."""
    base = Path(manifest_path).resolve().parent
    target = Path(target).resolve()
    try:
        return Path(os.path.relpath(target, base)).as_posix()
    except ValueError:
        return str(target)


def _resolve(manifest_path: Path, stored: str) -> Path:
    p = Path(stored)
    return p if p.is_absolute() else Path(os.path.normpath(Path(manifest_path).resolve().parent / p))


# -- small file helpers every step uses ---------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename
    (``files.atomic_path``): an interrupted write leaves the old file (or none), never a partial one."""
    with files.atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_output(path: Path) -> Path:
    """A temp path beside ``path`` for a writer that needs a filename (zip, converter output).

    The caller writes to the returned path and then calls ``os.replace(tmp, path)``; on failure it
    unlinks the temp path. Kept beside the target so the rename never crosses filesystems.
    """
    return files.temp_beside(path)
