"""The size budget: what each component weighs, zipped and unzipped, against Lambda's limits."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lamb import layout, runtime_lib
from lamb.errors import BudgetExceeded, InputError
from lamb.targets import IMAGE, IMAGE_BASE_ALLOWANCE, UNZIPPED, ZIP_DIRECT_UPLOAD
from lamb.units import MiB, mb

# Which component a file belongs to, by its first path segment (normalised). Order matters.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("model", tuple(fmt.file for fmt in runtime_lib.formats().values())),
    ("handler", (layout.HANDLER_FILE, layout.HANDLER_PACKAGE, layout.MANIFEST_FILE, "requirements.txt", "dockerfile", ".dockerignore", "readme.md")),
    ("runtime lib", tuple(p for lib in runtime_lib.LIBRARIES.values() for p in (lib.module, lib.module + "-"))),
    ("numpy", ("numpy", "numpy.libs", "numpy-")),
    ("pillow", ("pil", "pillow.libs", "pillow-")),
)
OTHER = "other"


@dataclass
class ComponentSize:
    name: str
    files: int
    unzipped: int
    zipped: int | None  # None for an image context


@dataclass
class LimitCheck:
    name: str  # "zip direct upload", "unzipped (incl. layers)", "container image", "--max-size"
    limit: int
    actual: int
    ok: bool
    severity: str  # "warn" | "fail"
    advice: str = ""


@dataclass
class BudgetReport:
    components: list[ComponentSize]
    total_unzipped: int
    total_zipped: int | None
    checks: list[LimitCheck]
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[LimitCheck]:
        return [c for c in self.checks if not c.ok and c.severity == "fail"]


def component_of(arcname: str, model_files: tuple[str, ...] = ()) -> str:
    """The component a file belongs to; ``model_files``: the model's own other files (an ONNX model's
    external data, named as the model records it), which count as the model."""
    head = arcname.split("/", 1)[0].lower()
    if head in {f.lower() for f in model_files}:
        return "model"
    for name, prefixes in COMPONENTS:
        for prefix in prefixes:
            if head == prefix or (prefix.endswith("-") and head.startswith(prefix) and head.endswith(".dist-info")):
                return name
    return OTHER


def parse_size(text: str | int | None) -> int | None:
    """``"50MB"``, ``"1.5 GB"``, ``"250MiB"``, ``"800k"`` or a byte count -> bytes (MB == MiB, as AWS counts)."""
    if text is None or isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmg]?)(i?b)?\s*", str(text).lower())
    if not m:
        raise InputError(f"cannot read {text!r} as a size", "write it like 50MB, 1.5GB, 800KB or a number of bytes")
    number, unit = float(m.group(1)), m.group(2)
    return int(number * {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}[unit])


def measure_zip(path: Path, model_files: tuple[str, ...] = ()) -> list[ComponentSize]:
    """Each component's files and bytes in the zip (``model_files``: as ``component_of`` takes them)."""
    sizes: dict[str, ComponentSize] = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = component_of(info.filename, model_files)
            comp = sizes.setdefault(name, ComponentSize(name, 0, 0, 0))
            comp.files += 1
            comp.unzipped += info.file_size
            # local header + name: what the entry really costs in the zip
            comp.zipped = (comp.zipped or 0) + info.compress_size + 30 + len(info.filename.encode())
    return _ordered(sizes)


def measure_tree(root: Path, extra: dict[str, Path] | None = None, model_files: tuple[str, ...] = ()) -> list[ComponentSize]:
    """Unzipped sizes of a folder (an installed dependency tree), plus named extra files."""
    sizes: dict[str, ComponentSize] = {}
    items = [(p.relative_to(root).as_posix(), p) for p in Path(root).rglob("*") if p.is_file()]
    for name, p in (extra or {}).items():  # a file, or the handler's package folder
        items += [(f"{name}/{f.relative_to(p).as_posix()}", f) for f in Path(p).rglob("*") if f.is_file()] if Path(p).is_dir() else [(name, p)]
    for rel, p in items:
        name = component_of(rel, model_files)
        comp = sizes.setdefault(name, ComponentSize(name, 0, 0, None))
        comp.files += 1
        comp.unzipped += p.stat().st_size
    return _ordered(sizes)


def _ordered(sizes: dict[str, ComponentSize]) -> list[ComponentSize]:
    order = [name for name, _ in COMPONENTS] + [OTHER]
    return [sizes.get(name) or ComponentSize(name, 0, 0, 0 if any(c.zipped is not None for c in sizes.values()) else None) for name in order]


def check(
    components: list[ComponentSize], *, fmt: str, max_size: int | None = None, zip_bytes: int | None = None
) -> BudgetReport:
    """Compare sizes with Lambda's limits (and ``max_size``); never raises, see ``enforce``."""
    unzipped = sum(c.unzipped for c in components)
    zipped = zip_bytes if fmt == "zip" else None
    checks: list[LimitCheck] = []
    warnings: list[str] = []
    if fmt == "zip":
        assert zipped is not None
        checks.append(LimitCheck(
            "zip direct upload", ZIP_DIRECT_UPLOAD, zipped, zipped <= ZIP_DIRECT_UPLOAD, "warn",
            "upload it through S3 (aws lambda update-function-code --s3-bucket ...), quantize the model "
            "(lamb convert --quantize dynamic or float16), or build an image (--format image)",
        ))
        checks.append(LimitCheck(
            "unzipped (incl. layers)", UNZIPPED, unzipped, unzipped <= UNZIPPED, "fail",
            "quantize the model (lamb convert --quantize dynamic), or build a container image (--format image)",
        ))
    else:
        image = unzipped + IMAGE_BASE_ALLOWANCE
        checks.append(LimitCheck(
            "container image (incl. ~1 GiB base)", IMAGE, image, image <= IMAGE, "fail",
            "quantize the model (lamb convert --quantize dynamic or int8)",
        ))
    if max_size is not None:
        actual = zipped if zipped is not None else unzipped
        checks.append(LimitCheck(
            "--max-size (zip)" if zipped is not None else "--max-size (unzipped)", max_size, actual,
            actual <= max_size, "fail", "quantize the model, or raise --max-size",
        ))
    for c in checks:
        if not c.ok and c.severity == "warn":
            warnings.append(f"{c.name}: {_mb(c.actual)} is over {_mb(c.limit)}; {c.advice}")
    return BudgetReport(components, unzipped, zipped, checks, warnings)


def enforce(report: BudgetReport) -> None:
    """Raise ``BudgetExceeded`` for the first failed hard limit, naming the largest components."""
    failed = report.failed
    if not failed:
        return
    first = failed[0]
    key = (lambda c: c.zipped or 0) if first.name.endswith("(zip)") else (lambda c: c.unzipped)
    largest = sorted((c for c in report.components if key(c)), key=key, reverse=True)[:3]
    names = ", ".join(f"{c.name} {_mb(key(c))}" for c in largest)
    raise BudgetExceeded(
        f"the artifact breaks the {first.name} limit: {_mb(first.actual)} > {_mb(first.limit)} (largest: {names})",
        first.advice,
    )


def _mb(n: int) -> str:
    return f"{mb(n)} MB"
