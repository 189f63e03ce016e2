"""``lamb convert --quantize auto``: compare the modes, keep the one ``lamb compare`` recommends."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb.compare.core import compare_models
from lamb.compare.report import CompareReport


def convert_auto(source: Path, output: Path | None = None, **options: Any) -> tuple[Any, CompareReport]:
    """Compare the modes and keep the recommended one at ``output`` (``lamb convert -q auto``).

    The comparison stays within the runtime library convert was asked for (``runtime_lib``; default:
    the default library, as ``lamb convert`` has), whose format the output's suffix follows. The kept
    model's manifest records its verification and the comparison that chose it, so ``lamb package``
    can follow directly. Nothing is written when no mode passes.
    """
    from lamb.convert import ConversionResult
    from lamb.convert.core import missing_evidence, output_path, runtime_lib_for
    from lamb.errors import VerificationFailed
    from lamb.source import open_source

    source = Path(source)
    lib = runtime_lib_for(open_source(source), options.get("runtime_lib"))
    options = {**options, "runtime_lib": lib.name}
    model_path = output_path(source, output, lib.format)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".lamb-auto-", dir=model_path.parent))
    try:
        report = compare_models(source, output_dir=work, **options)
        row = report.recommended_row
        if row is None or row.model_path is None or row.manifest_path is None:
            raise VerificationFailed(
                f"--quantize auto kept nothing: {report.why}",
                "run `lamb compare` to see each mode's verdict, or pick a mode with --quantize",
            )
        model_path = output_path(source, output, lib.format, lib.format.mode(row.mode))  # a quantized one never replaces its source
        manifest = mf.read(row.manifest_path)
        manifest_path = mf.manifest_path_for(model_path)
        manifest.model.file = mf.relative_to_manifest(manifest_path, model_path)
        manifest = manifest.with_source(manifest_path, source)
        manifest.comparison = report.summary()
        for name in manifest.model.external_data:  # the weights an ONNX model reads, beside it
            os.replace(row.model_path.parent / name, model_path.parent / name)
        os.replace(row.model_path, model_path)
        mf.write(manifest, manifest_path)
        row.model_path, row.manifest_path = model_path, manifest_path
        for other in report.rows:
            if other is not row:
                other.model_path = other.manifest_path = None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = ConversionResult(
        model_path=model_path,
        manifest_path=manifest_path,
        manifest=manifest,
        seconds=report.seconds.get("total", 0.0),
        source_bytes=manifest.source_bytes,
        model_bytes=manifest.model.bytes,
        notes=[f"--quantize auto kept {row.label}: {report.why}", "verified while comparing: the verdict is in the manifest"],
        warnings=missing_evidence(manifest),
    )
    return result, report
