"""What deploy needs to know about an artifact, read from the artifact's own record.

Runtime, architecture, package type and handler come from the package record ``lamb package``
wrote into the artifact's ``lamb.json``; the smoke run's cold start, invocation time and peak
memory from the manifest beside it that records this very build. Never from flags, never from
the file name. The sha256 is computed from the bytes on disk: that is what the deployed
``CodeSha256`` is compared with.
"""

from __future__ import annotations

import base64
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lamb import manifest as mf
from lamb.errors import ArtifactError, InputError, ManifestError
from lamb.release import zip_check

PACKAGE_TYPES = {"zip": "Zip", "image": "Image"}  # lamb's format -> Lambda's PackageType


@dataclass(frozen=True)
class ArtifactFacts:
    """The artifact as Lambda will see it."""

    path: Path
    package_type: str  # Lambda's PackageType: "Zip" | "Image"
    runtime: str | None  # "python3.12"; None for an image (its base image carries the runtime)
    arch: str  # Lambda's name: "x86_64" | "arm64"
    handler: str  # "lambda_function.lambda_handler"
    sha256: str | None  # hex digest of the zip's bytes; None for an image context
    zipped_bytes: int | None  # the zip's size; None for an image context
    unzipped_bytes: int  # what Lambda extracts (zip), or the context's files (image)
    model: str  # the model's name
    manifest: mf.Manifest | None  # the shipped lamb.json: signature, labels, the package record (None: a plain zip)
    init_ms: float | None = None  # the smoke run's cold start, when a manifest records this build
    invoke_ms: float | None = None
    peak_rss_mb: float | None = None
    measured_on: str | None = None  # what the smoke run ran (its label: the artifact itself, or a host stand-in)
    measured_on_stand_in: bool = False

    @property
    def code_sha256(self) -> str | None:
        """Lambda's ``CodeSha256`` for this zip: the base64 of the raw SHA-256 digest."""
        if self.sha256 is None:
            return None
        return base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii")

    @property
    def stem(self) -> str:
        return self.path.stem if self.path.suffix == ".zip" else self.path.name


def read_facts(path: Path) -> ArtifactFacts:
    """Read an artifact (a zip, or an image context folder) and its record."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no artifact at {path}", "run `lamb package` first, or name the .zip (or image folder) it built")
    if path.is_file():  # what Lambda will unpack, refused here as invoke refuses it; its CRCs too
        zip_check.check_artifact(path)
        zip_check.read_through(path)
    shipped = mf.read_shipped(path)
    record = shipped.package
    if record is None:
        raise ArtifactError(
            f"{path} carries no package record (runtime, arch, handler): it was built before lamb wrote one",
            "rebuild it with this lamb: `lamb package`",
        )
    if path.is_dir():
        unzipped = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        sha256 = zipped = None
    else:
        with zipfile.ZipFile(path) as zf:  # read_shipped opened it already
            unzipped = sum(info.file_size for info in zf.infolist())
        sha256, zipped = mf.sha256_file(path), path.stat().st_size
    measured, model = _measured(path, sha256)
    smoke = measured.smoke if measured is not None else None
    passed = smoke if smoke is not None and smoke.ran and smoke.passed else None
    return ArtifactFacts(
        path=path,
        package_type=PACKAGE_TYPES[record.format],
        runtime=record.runtime if record.format == "zip" else None,
        arch=record.arch,
        handler=record.handler,
        sha256=sha256,
        zipped_bytes=zipped,
        unzipped_bytes=unzipped,
        model=model or Path(shipped.source).stem,
        manifest=shipped,
        init_ms=passed.init_ms if passed else None,
        invoke_ms=passed.invoke_ms if passed else None,
        peak_rss_mb=passed.peak_rss_mb if passed else None,
        measured_on=passed.label if passed else None,
        measured_on_stand_in=bool(passed and passed.stand_in),
    )


def _measured(artifact: Path, sha256: str | None) -> tuple[mf.PackageRecord | None, str | None]:
    """The full package record (smoke figures included) and the model's name, from the manifest
    beside the artifact whose record names this artifact, and for a zip, these very bytes."""
    where = artifact.resolve()
    for manifest_path in sorted(where.parent.glob("*" + mf.SUFFIX)):
        try:
            record = mf.read(manifest_path).record_of(where, manifest_path, sha256)
        except (ManifestError, OSError):
            continue
        if record is not None:
            return record, mf.model_stem(manifest_path)
    return None, None


def plain_zip(path: Path, *, runtime: str, arch: str, handler: str, name: str) -> ArtifactFacts:
    """A zip lamb did not package (``lamb probe``'s function, no dependencies): runtime, arch and
    handler from the caller, size and sha256 from the bytes. No measured figures: deploy it with
    ``memory_mb`` and ``timeout_s`` set in ``DeployOptions``."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path} is not a zip", "build the function's zip first")
    with zipfile.ZipFile(path) as zf:
        unzipped = sum(info.file_size for info in zf.infolist())
    return ArtifactFacts(path=path, package_type="Zip", runtime=runtime, arch=arch, handler=handler,
                         sha256=mf.sha256_file(path), zipped_bytes=path.stat().st_size, unzipped_bytes=unzipped,
                         model=name, manifest=None)
