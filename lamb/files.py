"""Files on the user's disk: which ones a record may name, and changing them safely.

A manifest is a file anyone can edit, so the files it names are judged before they are read or
shipped (``regular_file_in``, ``check_sha256``): a model named ``/etc/hostname``, ``../../x`` or a
symbolic link to either never leaves the machine. ``locked`` serialises the read-modify-write of
a record two lamb processes may change at once (two ``lamb package`` runs on one manifest).

Every file lamb writes is written beside its final name and renamed over it (``atomic_path``), so
an interrupted step leaves the old file or none; an OSError while writing (a read-only folder, a
full disk) is one line naming the file (``writing``), and the temporary file is gone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lamb import stop
from lamb.errors import InputError, ManifestError
from lamb.units import MiB


def regular_file_in(folder: Path, path: Path, what: str, hint: str) -> Path:
    """``path``, when it is a regular file at or below ``folder`` (no symbolic link, no folder linked
    out, no hard link to a file elsewhere); ManifestError naming it otherwise."""
    folder = Path(os.path.realpath(folder))
    path = Path(os.path.normpath(Path(folder, path)))
    outside = ManifestError(f"{what} {path} lies outside the manifest's folder {folder}; lamb ships only files beside it", hint)
    if not _below(path, folder):
        raise outside
    try:
        info = path.lstat()
    except OSError:
        raise ManifestError(f"the manifest names {path}, which does not exist", hint) from None
    if stat.S_ISLNK(info.st_mode):
        raise ManifestError(f"{what} {path} is a symbolic link; lamb ships only regular files", hint)
    if not stat.S_ISREG(info.st_mode):
        raise ManifestError(f"{what} {path} is not a regular file", hint)
    if not _below(Path(os.path.realpath(path)), folder):  # through a linked folder
        raise outside
    if info.st_nlink > 1:  # a hard link is the same file as one elsewhere (/etc/hostname)
        raise ManifestError(f"{what} {path} is a hard link ({info.st_nlink} names); lamb ships only files "
                            "that are the folder's own", hint)
    return path


def _below(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_sha256(path: Path, recorded: str | None, hint: str) -> None:
    """ManifestError unless the file at ``path`` hashes to ``recorded``."""
    if recorded is None:
        raise ManifestError(f"the manifest records no sha256 for {path.name}", hint)
    actual = sha256_file(path)
    if actual != recorded:
        raise ManifestError(
            f"{path.name} is not the file `lamb convert` recorded (sha256 {actual[:12]}... != {recorded[:12]}...)", hint
        )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s folder while the block runs (another process that asks
    waits). The folder, not the file: an atomic write replaces the file, and a lock on the old one
    would lock nothing; and a folder leaves no lock file behind."""
    with writing(path):
        fd = os.open(Path(path).parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# -- writing ------------------------------------------------------------------------------------


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """An OSError in the block (a read-only folder, a full disk) as one line naming ``path``, the
    file or folder the user knows (the OSError names a temporary file, or nothing)."""
    try:
        yield
    except OSError as exc:
        raise cannot_write(path, exc.strerror or exc.__class__.__name__, full=exc.errno in _FULL) from exc


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def cannot_write(path: Path, why: str, *, full: bool) -> InputError:
    """The one line for a write the disk refused at ``path``, and what to do: make room (``full``),
    or write where one may."""
    return InputError(f"cannot write {path}: {why}", "free some space on that disk, or write elsewhere" if full else
                      "write to a folder you may write to, or change its permissions")


# What a library that writes through its own C++ file layer (TensorFlow's SaveV2) says when the
# disk refuses, instead of raising an OSError: strerror's texts for the errnos ``writing`` names.
_REFUSALS = {errno.ENOSPC: "No space left on device", errno.EDQUOT: "Disk quota exceeded", errno.EROFS: "Read-only file system"}


def write_refused(exc: BaseException, path: Path) -> InputError | None:
    """``writing``'s one line for ``exc`` when its text says the disk refused a write under
    ``path`` (full, over quota, read-only); None for any other failure."""
    said = str(exc)
    for code, text in _REFUSALS.items():
        if text in said:
            return cannot_write(path, text, full=code in _FULL)
    return None


def out_of_space(folder: Path, need: int) -> InputError | None:
    """``writing``'s one line for a library that failed writing in ``folder`` without saying why
    (ONNX Runtime: "Failed to write external initializers"), when that disk has less than
    ``need`` bytes free; None when it has room (the failure is something else)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    if free >= need:
        return None
    return cannot_write(folder, f"No space left on device ({free / MiB:.1f} MB free, about {need / MiB:.1f} MB needed)", full=True)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for the block to write; renamed over ``path`` when the block
    ends, removed when it fails (an exception, Ctrl-C, SIGTERM through lamb's CLI). Write errors
    are ``writing``'s one line."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        with writing(path):
            yield tmp
            os.chmod(tmp, 0o644)
            publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def publish(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` over ``path``, unless a stop was asked for meanwhile (one a C
    extension swallowed included: ``lamb.stop``), which is raised instead."""
    stop.check()
    os.replace(tmp, path)


def temp_beside(path: Path, prefix: str | None = None, suffix: str = ".tmp") -> Path:
    """A new empty file beside ``path`` (so a rename never crosses file systems), for a writer
    that renames it over ``path`` or removes it. Until then it is this process's to remove when
    Ctrl-C or SIGTERM stops lamb's CLI (``remove_unsettled``): a signal that lands between the
    file's creation and the caller's ``try`` would otherwise leave it behind (CI caught one), so
    it waits until the file is noted (``lamb.stop.deferred``)."""
    path = Path(path)
    stop.check()
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with stop.deferred():  # a stop waits until the file is noted
            fd, name = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=suffix, dir=path.parent)
            _UNSETTLED.add(Path(name))
            os.close(fd)
    return Path(name)


def remove_unsettled() -> None:
    """Remove every ``temp_beside`` file and ``scratch`` folder still there (none was renamed or
    removed): lamb's CLI calls this when Ctrl-C or SIGTERM stops a step. A renamed file's old
    name is simply gone."""
    while _UNSETTLED:
        path = _UNSETTLED.pop()
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


_UNSETTLED: set[Path] = set()


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A fresh folder in the system's temporary folder for the block, removed however the block
    ends; a write error in it (that disk full) names it."""
    stop.check()
    with writing(Path(tempfile.gettempdir())), stop.deferred():  # as in temp_beside: noted before a stop lands
        folder = Path(tempfile.mkdtemp(prefix=prefix))
        _UNSETTLED.add(folder)
    try:
        with writing(folder):
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        _UNSETTLED.discard(folder)
