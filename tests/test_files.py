"""lamb.files: what a record may name (tests/test_manifest.py drives it through the manifest), and
writing on a real full or read-only disk: one line naming the file, no temporary file left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

import pytest
from conftest import remount_read_only

from lamb import files, stop
from lamb.errors import InputError


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_temporary_file(small_disk):
    target = small_disk / "m.onnx.data"
    with pytest.raises(InputError, match=rf"^cannot write {target}: No space left on device$") as err, \
            files.atomic_path(target) as tmp:
        tmp.write_bytes(b"\0" * (1 << 20))
    assert "free some space" in err.value.hint
    assert list(small_disk.iterdir()) == []


def test_a_read_only_folder_is_one_line_naming_the_file(small_disk):
    (small_disk / "old.json").write_text("{}")
    remount_read_only(small_disk)
    with pytest.raises(InputError, match=rf"^cannot write {small_disk / 'old.json'}: Read-only file system$"), \
            files.atomic_path(small_disk / "old.json") as tmp:
        tmp.write_text("{}")
    assert (small_disk / "old.json").read_text() == "{}"


def test_any_failure_removes_the_temporary_file_and_keeps_the_old_one(tmp_path):
    (tmp_path / "f.zip").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), files.atomic_path(tmp_path / "f.zip") as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["f.zip"] and (tmp_path / "f.zip").read_bytes() == b"old"
    with files.atomic_path(tmp_path / "f.zip") as tmp:
        tmp.write_bytes(b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["f.zip"] and (tmp_path / "f.zip").read_bytes() == b"new"


def test_a_scratch_folder_on_a_full_disk_is_named_and_removed(small_disk, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))
    with pytest.raises(InputError, match=rf"^cannot write {small_disk}/lamb-package-\w+: No space left on device$"), \
            files.scratch("lamb-package-") as work:
        (work / "deps.bin").write_bytes(b"\0" * (1 << 20))
    assert list(small_disk.iterdir()) == []


def test_the_lock_makes_a_second_process_wait(tmp_path):
    """Two real processes: the second's read-modify-write starts only once the first's has ended."""
    record = tmp_path / "m.lamb.json"
    record.write_text("")
    script = (
        "import sys, time; from pathlib import Path; from lamb import files\n"
        "p = Path(sys.argv[1])\n"
        "with files.locked(p):\n"
        "    print('locked', flush=True); text = p.read_text(); time.sleep(float(sys.argv[3])); p.write_text(text + sys.argv[2])\n"
    )
    first = subprocess.Popen([sys.executable, "-c", script, str(record), "a", "1.0"], stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline() == "locked\n"  # the first holds the lock, mid-change
    second = subprocess.run([sys.executable, "-c", script, str(record), "b", "0"], capture_output=True, timeout=60, check=False)
    assert first.wait(timeout=60) == 0 and second.returncode == 0
    assert record.read_text() == "ab"


@pytest.mark.parametrize(("signum", "handler", "raised"), [
    (signal.SIGINT, stop.interrupt, KeyboardInterrupt), (signal.SIGTERM, stop.ask, stop.Terminated),
])
def test_a_signal_as_the_temporary_file_is_made_leaves_it_for_the_cli_to_remove(tmp_path, monkeypatch, signum, handler, raised):
    # CI caught SIGTERM landing between mkstemp and the writer's try: the zip's .tmp stayed. With
    # lamb's CLI handlers the stop waits until the file is noted (lamb.stop.deferred), is raised
    # then, and the CLI removes what is noted and unsettled.
    real = tempfile.mkstemp

    def mkstemp_then_signal(*args, **kwargs):
        made = real(*args, **kwargs)
        os.kill(os.getpid(), signum)  # the handler runs here, in this (the main) thread
        return made

    kept = files.temp_beside(tmp_path / "kept.zip")
    kept.replace(tmp_path / "kept.zip")  # a settled one: renamed over its name
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_then_signal)
    previous = signal.signal(signum, handler)
    try:
        with pytest.raises(raised):
            files.temp_beside(tmp_path / "f.zip")
        assert stop.asked()
        with pytest.raises(raised):  # what a C extension swallowed is raised again where lamb writes next
            files.temp_beside(tmp_path / "g.zip")
    finally:
        signal.signal(signum, previous)
        stop.reset()
    [left] = [p for p in tmp_path.iterdir() if p.name != "kept.zip"]
    assert left.name.startswith(".f.zip.") and left.suffix == ".tmp"
    files.remove_unsettled()
    assert [p.name for p in tmp_path.iterdir()] == ["kept.zip"]
