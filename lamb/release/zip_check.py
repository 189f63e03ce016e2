"""What a zip may hold before anything unpacks it: a wheel (lamb's audit, or pip installing it),
and an artifact lamb reads on this machine (``lamb invoke``, ``lamb serve``, ``lamb deploy``).

Both are zip files someone else may have built. The central directory is read, and the zip
refused in one line, before a byte of it is extracted, when it holds an entry that would land
outside the folder it is unpacked into (``../``, an absolute path, a drive letter), one whose name
no file system takes as it is (control characters, a backslash, a part over 255 bytes), a
symbolic link or device file, the same path twice (exactly, or once case and Unicode
normalisation are applied, as on macOS), a file that is also a folder, an encrypted entry or one
compressed by a method other than deflate (all a wheel or a Lambda zip uses), or a bomb: more
entries or more unpacked bytes than a Lambda function can hold, or sizes no deflate stream can
produce.

The declared sizes are a real bound: ``zipfile`` (which lamb and pip both read zips with) stops
each entry at its declared size and then fails its CRC check, so an entry that lies small cannot
write more than it declares. A CRC is only known once the entry is read: ``read_through`` reads
them all, and unpacking checks each as it goes.
"""

from __future__ import annotations

import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from lamb.errors import ArtifactError, DependencyError, LambError
from lamb.targets import UNZIPPED
from lamb.units import human_bytes

# A whole zip function unpacks to at most 250 MB (lamb.targets.UNZIPPED, Lambda's quota); one wheel
# bigger than that cannot ship in one, and the images lamb builds hold only its runtime deps
# (measured 2026-12-06, cp312 x86_64: onnxruntime 1.32 unpacks to 72 MB, ai-edge-litert 2.3 to
# 57 MB, NumPy 2.5 to 50 MB).
MAX_UNPACKED = UNZIPPED
# NumPy 2.5's wheel holds 1,042 entries, the most of lamb's deps; a hundredfold margin, far below
# what makes unpacking itself the attack (one inode and one open() per entry).
MAX_ENTRIES = 100_000
# zlib's technical details: "the limit is 1032:1" for deflate; an entry declaring more than that
# over its compressed size is lying about one of the two.
DEFLATE_MAX_RATIO = 1032
# PEP 427 wheels and Lambda's zips are stored or deflated; zipfile would also try bzip2 and LZMA.
METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
# Linux's NAME_MAX: a longer part cannot be created, whatever zipfile makes of it; and a whole
# name far inside PATH_MAX (4,096) once the folder it unpacks into is put before it.
MAX_NAME_PART = 255
MAX_NAME = 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What reading a damaged entry raises: a CRC or header mismatch, a broken deflate stream, an end too soon.
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError)


@dataclass(frozen=True)
class ZipContents:
    """What a zip that passed declares: its entry count and unpacked bytes."""

    path: Path
    entries: int
    unpacked_bytes: int


WheelContents = ZipContents


def check_zip(path: Path, refuse: Callable[[str], LambError], max_unpacked: int = MAX_UNPACKED) -> ZipContents:
    """Raise ``refuse(problem)`` (one line naming the entry) unless the zip at ``path`` is safe to unpack."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise refuse(f"is not a readable zip file ({exc})") from None
    if len(infos) > MAX_ENTRIES:
        raise refuse(f"holds {len(infos):,} entries (lamb unpacks at most {MAX_ENTRIES:,})")
    total = 0
    for info in infos:
        problem = _unsafe_name(info.filename) or _unsafe_kind(info) or _unreadable(info) or _impossible_size(info)
        if problem:
            raise refuse(problem)
        total += info.file_size
    if total > max_unpacked:
        raise refuse(f"unpacks to {human_bytes(total)}, more than the {human_bytes(max_unpacked)} a whole "
                     "Lambda zip function may unpack to")
    clash = _clash([info.filename for info in infos])
    if clash:
        raise refuse(clash)
    return ZipContents(path, len(infos), total)


def check_wheel(path: Path, max_unpacked: int = MAX_UNPACKED) -> ZipContents:
    """Refuse ``path`` (``DependencyError``, one line naming the entry) unless it is safe to unpack."""
    return check_zip(path, lambda problem: _refused(Path(path), problem), max_unpacked)


def check_artifact(path: Path) -> ZipContents:
    """Refuse the artifact zip at ``path`` (``ArtifactError``, one line) unless it is safe to
    unpack here and would unpack on Lambda (within its 250 MB)."""
    return check_zip(path, lambda problem: artifact_refused(Path(path), problem))


def read_through(path: Path) -> None:
    """Read every entry of the artifact zip at ``path`` to its end, so a damaged one (its CRC)
    is refused here rather than by Lambda; ``check_artifact`` first."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                with zf.open(info) as f:
                    while f.read(1 << 20):
                        pass
    except DAMAGED as exc:
        raise artifact_refused(Path(path), f"is damaged: {exc}") from None


def artifact_refused(path: Path, problem: str) -> ArtifactError:
    return ArtifactError(f"the artifact {path} {problem}",
                         "rebuild it with `lamb package`: a zip lamb builds never holds this")


def check_folder(folder: Path, supported: set, max_unpacked: int = MAX_UNPACKED) -> list[WheelContents]:
    """``check_wheel`` every wheel in ``folder`` whose tags ``supported`` (``packaging.tags``)
    accepts: the wheels pip may pick from it for that target."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    checked = []
    for wheel in sorted(Path(folder).glob("*.whl")):
        try:
            tags = parse_wheel_filename(wheel.name)[3]
        except InvalidWheelFilename:
            continue  # pip skips it too
        if tags & supported:
            checked.append(check_wheel(wheel, max_unpacked))
    return checked


def check_total(wheels: list[Path], where: str, max_unpacked: int = MAX_UNPACKED) -> int:
    """Refuse the ``wheels`` one install will unpack (each checked) when together they unpack to
    more than ``max_unpacked``; returns their unpacked bytes."""
    sizes = {Path(w).name: check_wheel(w, max_unpacked).unpacked_bytes for w in wheels}
    total = sum(sizes.values())
    if total > max_unpacked:
        largest = ", ".join(f"{name} {human_bytes(n)}" for name, n in sorted(sizes.items(), key=lambda kv: -kv[1])[:3])
        raise DependencyError(
            f"the {len(sizes)} wheels pip picked from {where} unpack to {human_bytes(total)} in all, more than the "
            f"{human_bytes(max_unpacked)} a whole Lambda zip function may unpack to (largest: {largest})",
            "check what pulls them in (`pip install --dry-run --report`), and remove or pin it",
        )
    return total


def _unsafe_name(name: str) -> str | None:
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return f"holds an entry with an absolute path ({name!r})"
    if ".." in parts:
        return f"holds an entry that climbs out of its folder ({name!r})"
    if _CONTROL.search(name) or "\\" in name:
        return f"holds an entry whose name has a control character or a backslash ({name!r})"
    if not name.strip("/") or len(name.encode("utf-8")) > MAX_NAME or any(len(part.encode("utf-8")) > MAX_NAME_PART for part in parts):
        return f"holds an entry whose name no file system takes ({name[:60]!r}{'...' if len(name) > 60 else ''})"
    return None


def _unsafe_kind(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind in (0, stat.S_IFREG, stat.S_IFDIR):
        return None
    what = "a symbolic link" if stat.S_ISLNK(mode) else "a device file, pipe or socket"
    return f"holds {what} ({info.filename!r}); pip and Python's zipfile would write it as a plain file, which is not what it says"


def _unreadable(info: zipfile.ZipInfo) -> str | None:
    if info.flag_bits & 0x1:
        return f"holds an encrypted entry ({info.filename!r})"
    if info.compress_type not in METHODS:
        return f"holds {info.filename!r} compressed by method {info.compress_type}; only stored and deflate are read"
    return None


def _impossible_size(info: zipfile.ZipInfo) -> str | None:
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        return f"declares {info.file_size:,} bytes for {info.filename!r}, stored (uncompressed) in {info.compress_size:,}"
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > DEFLATE_MAX_RATIO * max(info.compress_size, 1):
        return (f"declares {info.file_size:,} bytes for {info.filename!r} from {info.compress_size:,} compressed, a ratio "
                f"deflate cannot reach ({DEFLATE_MAX_RATIO}:1 at most)")
    return None


def _clash(names: Iterable[str]) -> str | None:
    """Two entries that unpack to one path (exactly, or on a case-insensitive or normalising file
    system), or a file that is also a folder."""
    seen: dict[str, str] = {}
    files: dict[str, str] = {}
    folders: set[str] = set()
    for name in names:
        key = _key(name)
        if key in seen:
            other = seen[key]
            same = "twice" if other == name else f"and {other!r}, which unpack to the same path on some file systems"
            return f"holds {name!r} {same}"
        seen[key] = name
        if not name.endswith("/"):
            files[key] = name
        parts = key.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    both = sorted(set(files) & folders)
    return f"holds {files[both[0]]!r} both as a file and as a folder" if both else None


def _key(name: str) -> str:
    """The path an entry lands at on the most forgiving file system: ``.`` and empty parts dropped,
    Unicode composed (macOS decomposes), case folded (macOS and Windows ignore it)."""
    parts = [p for p in re.split(r"[/\\]", name) if p not in ("", ".")]
    return unicodedata.normalize("NFC", "/".join(parts)).casefold()


def _refused(path: Path, problem: str) -> DependencyError:
    return DependencyError(
        f"the wheel {path.name} {problem}",
        f"remove it from {path.parent}: a wheel built by pip, build or uv never holds this; rebuild it from its source",
    )
