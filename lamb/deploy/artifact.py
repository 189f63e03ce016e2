"""What deploy needs to know about an artifact, read from the artifact's own record.

Runtime, architecture, package type and handler come from the record ``lamb package`` wrote
into the artifact; the measured cold start, invocation time and peak memory from the manifest
beside it. Never from flags, never from the file name. The sha256 is computed from the bytes on
disk: that is what the deployed ``CodeSha256`` is compared with.
"""

from __future__ import annotations

import base64
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb.errors import ArtifactError, InputError

PACKAGE_TYPES = {"zip": "Zip", "image": "Image"}  # lamb's format -> Lambda's PackageType


@dataclass(frozen=True)
class ArtifactFacts:
    """The artifact as Lambda will see it."""

    path: Path
    package_type: str  # Lambda's PackageType: "Zip" | "Image"
    runtime: str | None  # "python3.12"; None for an image (the base image carries it)
    arch: str  # Lambda's name: "x86_64" | "arm64"
    handler: str  # "lambda_function.lambda_handler"
    sha256: str | None  # hex digest of the zip's bytes; None for an image context
    zipped_bytes: int | None  # the zip's size; None for an image context
    unzipped_bytes: int  # what Lambda extracts (zip), or the context's files (image)
    model: str  # the model's name, for naming things (bucket keys, roles, ECR repositories)
    init_ms: float | None = None  # the smoke run's cold start, when the record has it
    invoke_ms: float | None = None
    peak_rss_mb: float | None = None
    manifest: dict[str, Any] | None = None  # the shipped lamb.json (signature, labels, ...)

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
    if path.is_dir():
        record_path = path / mf.ARTIFACT_MANIFEST
        if not record_path.is_file():
            raise InputError(f"{path} is not a lamb image context (no {mf.ARTIFACT_MANIFEST})", "name a folder `lamb package --format image` built")
        shipped = _parse(record_path.read_bytes(), path)
        unzipped = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        sha256 = zipped = None
    else:
        try:
            with zipfile.ZipFile(path) as zf:
                try:
                    shipped = _parse(zf.read(mf.ARTIFACT_MANIFEST), path)
                except KeyError:
                    raise InputError(
                        f"{path} holds no {mf.ARTIFACT_MANIFEST}: it was not built by `lamb package`",
                        "build it with `lamb package`; deploy reads the runtime, arch and handler from that record",
                    ) from None
                unzipped = sum(info.file_size for info in zf.infolist())
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{path} is not a readable zip ({exc})", "name the .zip `lamb package` built") from None
        sha256, zipped = mf.sha256_file(path), path.stat().st_size
    package = shipped.get("package")
    if not isinstance(package, dict):
        raise ArtifactError(
            f"{path} carries no package record (runtime, arch, handler)",
            "rebuild it with this lamb: `lamb package`",
        )
    fmt = package.get("format", "image" if path.is_dir() else "zip")
    measured = _measured(path, sha256)
    return ArtifactFacts(
        path=path,
        package_type=PACKAGE_TYPES[fmt],
        runtime=package.get("runtime") if fmt == "zip" else None,
        arch=package["arch"],
        handler=package["handler"],
        sha256=sha256,
        zipped_bytes=zipped,
        unzipped_bytes=unzipped,
        model=Path(str(shipped.get("source") or "model")).stem,
        init_ms=measured.get("init_ms"),
        invoke_ms=measured.get("invoke_ms"),
        peak_rss_mb=measured.get("peak_rss_mb"),
        manifest=shipped,
    )


def _parse(data: bytes, path: Path) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise ArtifactError(f"the {mf.ARTIFACT_MANIFEST} in {path} is not a lamb record", "rebuild it with `lamb package`")
    return parsed


def _measured(artifact: Path, sha256: str | None) -> dict[str, float]:
    """The smoke run's figures from the manifest beside the artifact that records this very build."""
    for manifest_path in sorted(artifact.resolve().parent.glob("*" + mf.SUFFIX)):
        try:
            data = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        package = data.get("package") if isinstance(data, dict) else None
        if not isinstance(package, dict):
            continue
        if sha256 is not None and package.get("sha256") != sha256:
            continue
        smoke = package.get("smoke") or package
        return {k: smoke[k] for k in ("init_ms", "invoke_ms", "peak_rss_mb") if isinstance(smoke.get(k), (int, float))}
    return {}
