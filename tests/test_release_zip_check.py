"""Hostile wheels (issue 17's "cases we did not get to"): each is refused in one line before a byte
of it is unpacked, by lamb's own audit or by pip, and nothing lands outside the build folder.

The wheels are built here with ``zipfile``, with a real ``*.dist-info`` (METADATA, WHEEL, RECORD),
so pip takes them for wheels; real wheels from the index pass.
"""

from __future__ import annotations

import base64
import hashlib
import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from lamb import targets
from lamb.errors import DependencyError
from lamb.release import audit, lib_choice, slim, wheels, zip_check
from lamb.units import MiB

TARGET = targets.get_target("python3.12", "x86_64")


def make_wheel(folder: Path, entries: list, name: str = "evil", version: str = "1.0",
               tag: str = "py3-none-any", requires: tuple[str, ...] = ()) -> Path:
    """A wheel of ``name`` holding ``entries`` (``(zip name, bytes)`` or ``(ZipInfo, bytes)``)
    beside a valid dist-info, its RECORD listing every entry, depending on ``requires``."""
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    needs = "".join(f"Requires-Dist: {r}\n" for r in requires)
    meta = [
        (f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{needs}".encode()),
        (f"{dist}/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()),
    ]
    rows = []
    for entry, data in [*entries, *meta]:
        arcname = entry.filename if isinstance(entry, zipfile.ZipInfo) else entry
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{arcname},sha256={digest},{len(data)}")
    rows.append(f"{dist}/RECORD,,")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.replace('-', '_')}-{version}-{tag}.whl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name: that is the point
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for entry, data in [*entries, *meta, (f"{dist}/RECORD", "\n".join(rows).encode())]:
                zf.writestr(entry, data)
    return path


def link(name: str, points_to: str) -> tuple[zipfile.ZipInfo, bytes]:
    """A zip entry that unzip (and Info-ZIP's extractors) make a symbolic link."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: its high 16 external bits are a st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, points_to.encode()


def make_lying_wheel(folder: Path, declared: int, compress_type: int) -> Path:
    path = make_wheel(folder, [("evil/__init__.py", b"")])
    with zipfile.ZipFile(path, "a", compress_type) as zf:
        zf.writestr("evil/big.bin", b"x" * 1000)
        zf.getinfo("evil/big.bin").file_size = declared  # the central directory is written on close
    return path


def outside_name(outside: Path) -> str:
    """A relative entry name that climbs from any folder up to 16 deep into ``outside``."""
    return "../" * 16 + str(outside / "escaped.py").lstrip("/")


HOSTILE = {
    "climbs out": lambda out: [("evil/__init__.py", b""), (outside_name(out), b"print('escaped')")],
    "climbs out (backslashes)": lambda out: [("evil/__init__.py", b""), ("..\\..\\escaped.py", b"")],
    "absolute path": lambda out: [("evil/__init__.py", b""), (str(out / "escaped.py"), b"print('escaped')")],
    "drive letter": lambda out: [("evil/__init__.py", b""), ("C:/escaped.py", b"")],
    "symlink out of the tree": lambda out: [("evil/__init__.py", b""), link("evil/passwd", "/etc/passwd")],
    "symlink to a folder above": lambda out: [("evil/__init__.py", b""), link("evil/up", "../../..")],
    "duplicate entry": lambda out: [("evil/__init__.py", b"X = 1\n"), ("evil/__init__.py", b"X = 2\n")],
    "names that differ in case": lambda out: [("evil/__init__.py", b""), ("evil/Mod.py", b""), ("evil/mod.py", b"")],
    "names that normalise alike": lambda out: [("evil/__init__.py", b""), ("evil/./a.py", b""), ("evil//a.py", b"")],
    "composed and decomposed": lambda out: [("evil/__init__.py", b""), ("evil/caf\u00e9.py", b""), ("evil/cafe\u0301.py", b"")],
    "a file that is a folder": lambda out: [("evil/__init__.py", b""), ("evil/x", b""), ("evil/x/y.py", b"")],
}
PHRASES = {
    "climbs out": "climbs out of its folder", "climbs out (backslashes)": "climbs out of its folder",
    "absolute path": "absolute path", "drive letter": "absolute path",
    "symlink out of the tree": "symbolic link", "symlink to a folder above": "symbolic link",
    "duplicate entry": "twice", "names that differ in case": "unpack to the same path",
    "names that normalise alike": "unpack to the same path", "composed and decomposed": "unpack to the same path",
    "a file that is a folder": "both as a file and as a folder",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_wheel_is_refused_in_one_line_naming_what_it_holds(tmp_path, case):
    wheel = make_wheel(tmp_path / "house", HOSTILE[case](tmp_path / "outside"))
    with pytest.raises(DependencyError) as err:
        zip_check.check_wheel(wheel)
    assert PHRASES[case] in err.value.message and wheel.name in err.value.message
    assert "\n" not in err.value.message and err.value.exit_code == 7
    assert str(wheel.parent) in err.value.hint


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_pip_never_unpacks_a_hostile_wheelhouse_wheel(tmp_path, case):
    # Before: pip installed the links as text files, the duplicate's last copy and one of each
    # colliding pair, and refused "../" in words about resolving ("pip failed resolving wheels").
    outside = tmp_path / "outside"
    outside.mkdir()
    make_wheel(tmp_path / "house", HOSTILE[case](outside))
    dest = tmp_path / "build" / "deps"
    with pytest.raises(DependencyError) as err:
        wheels.install_for_target(["evil"], TARGET, dest, wheelhouse=tmp_path / "house")
    assert PHRASES[case] in err.value.message and "evil-1.0-py3-none-any.whl" in err.value.message
    assert list(dest.iterdir()) == [] and list(outside.iterdir()) == []


def test_a_hostile_wheel_in_the_cache_is_refused_not_taken_for_a_miss(tmp_path):
    # The cache holds what pip downloaded from the index; a refusal there must not send lamb back
    # to the index (where it would fetch the same wheel) but stop, naming it.
    cache = tmp_path / "cache"
    make_wheel(cache, HOSTILE["symlink out of the tree"](tmp_path))
    dest = tmp_path / "deps"
    with pytest.raises(DependencyError, match=r"evil-1\.0-py3-none-any\.whl holds a symbolic link \('evil/passwd'\)"):
        wheels.install_for_target(["evil"], TARGET, dest, cache=cache)
    assert list(dest.iterdir()) == [] and sorted(p.name for p in cache.iterdir()) == ["evil-1.0-py3-none-any.whl"]


def test_the_audit_never_writes_outside_its_folder(tmp_path):
    # Before: audit_wheel_as_shipped unpacked "/abs/path" entries at that absolute path (the
    # lexical normalise kept the leading "/"), before pip ever saw the wheel.
    outside = tmp_path / "outside"
    outside.mkdir()
    name = "ai-edge-litert"
    wheel = make_wheel(tmp_path / "house", [("ai_edge_litert/__init__.py", b""), (str(outside / "escaped.py"), b"")],
                       name=name, version="9.9.9", tag="cp312-cp312-manylinux_2_17_x86_64")
    for check in (lambda: audit.audit_wheel_as_shipped(wheel, TARGET, slim.slim), lambda: audit.audit_wheel(wheel, TARGET),
                  lambda: lib_choice.resolve(TARGET, None, name, wheelhouse=wheel.parent)):
        with pytest.raises(DependencyError, match="absolute path"):
            check()
    assert list(outside.iterdir()) == []


def test_a_zip_bomb_is_refused_from_its_declared_sizes_before_unpacking(tmp_path):
    # 251 MiB of zeros deflate to ~1 MB: one wheel that alone unpacks past a function's 250 MB.
    path = make_wheel(tmp_path / "house", [("evil/__init__.py", b"")])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, zf.open("evil/zeros.bin", "w") as f:
        for _ in range(251):
            f.write(bytes(MiB))
    assert path.stat().st_size < 2 * MiB
    with pytest.raises(DependencyError, match=r"unpacks to 251\.0 MB, more than the 250\.0 MB"):
        zip_check.check_wheel(path)
    dest = tmp_path / "deps"
    with pytest.raises(DependencyError, match=r"unpacks to 251\.0 MB"):
        wheels.install_for_target(["evil"], TARGET, dest, wheelhouse=path.parent)
    assert list(dest.iterdir()) == []


def zeros_wheel(folder: Path, name: str, mib: int, requires: tuple[str, ...] = ()) -> Path:
    """An honest wheel of ``name`` holding ``mib`` MiB of zeros (about 1/1000 of it on disk)."""
    path = make_wheel(folder, [(f"{name}/__init__.py", b"")], name=name, requires=requires)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, zf.open(f"{name}/zeros.bin", "w") as f:
        for _ in range(mib):
            f.write(bytes(MiB))
    return path


def test_a_chain_of_dependencies_is_bounded_in_all_before_pip_unpacks_any(tmp_path):
    # Each wheel passes alone (100 MiB); the one asked for pulls in two more: 300 MiB in all.
    house = tmp_path / "house"
    zeros_wheel(house, "evil", 100, requires=("evil-b", "evil-c"))
    zeros_wheel(house, "evil_b", 100)
    zeros_wheel(house, "evil_c", 100)
    dest = tmp_path / "deps"
    with pytest.raises(DependencyError) as err:
        wheels.install_for_target(["evil"], TARGET, dest, wheelhouse=house)
    assert err.value.message.startswith(f"the 3 wheels pip picked from the wheelhouse {house} unpack to 300.0 MB in all, "
                                        "more than the 250.0 MB")
    assert "evil-1.0-py3-none-any.whl 100.0 MB" in err.value.message and "\n" not in err.value.message
    assert list(dest.iterdir()) == []
    # Two of them fit: pip installs them.
    got = wheels.install_for_target(["evil-b", "evil-c"], TARGET, tmp_path / "fits", wheelhouse=house)
    assert set(got.installed) == {"evil-b", "evil-c"}


@pytest.mark.parametrize(("declared", "method", "phrase"), [
    (10**12, zipfile.ZIP_DEFLATED, "a ratio deflate cannot reach"),  # a terabyte claimed (zip64)
    (2_000_000, zipfile.ZIP_DEFLATED, "a ratio deflate cannot reach"),  # below the total bound
    (5000, zipfile.ZIP_STORED, r"stored \(uncompressed\) in 1,000"),
])
def test_declared_sizes_no_compression_produces_are_refused(tmp_path, declared, method, phrase):
    path = make_lying_wheel(tmp_path / "house", declared, method)
    with pytest.raises(DependencyError, match=phrase):
        zip_check.check_wheel(path)


def test_too_many_entries_are_refused_before_any_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(zip_check, "MAX_ENTRIES", 50)  # a real 100,001-entry wheel takes seconds to write
    path = make_wheel(tmp_path / "house", [(f"evil/m{i}.py", b"") for i in range(60)])
    with pytest.raises(DependencyError, match=r"holds 63 entries \(lamb unpacks at most 50\)"):
        zip_check.check_wheel(path)


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "evil-1.0-py3-none-any.whl"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DependencyError, match="is not a readable zip file"):
        zip_check.check_wheel(path)


def test_only_wheels_pip_could_pick_for_the_target_are_checked(tmp_path):
    house = tmp_path / "house"
    make_wheel(house, [("evil/__init__.py", b""), link("evil/l", "/etc")], tag="cp39-cp39-win_amd64")
    (house / "not-a-wheel-name.whl").write_bytes(b"junk")
    good = make_wheel(house, [("good/__init__.py", b"")], name="good")
    checked = zip_check.check_folder(house, wheels.supported_tags(TARGET))
    assert [c.path for c in checked] == [good] and checked[0].entries == 4


@pytest.mark.network
def test_real_wheels_from_the_index_pass(target_installs):
    for install in target_installs.values():
        for name in install.wheels:
            contents = zip_check.check_wheel(wheels.cache_dir() / name)
            assert 0 < contents.unpacked_bytes < zip_check.MAX_UNPACKED and contents.entries > 1


@pytest.mark.e2e
def test_lamb_package_refuses_a_hostile_wheelhouse_wheel_in_one_line(tmp_path, verified_copy, target_installs):
    # The real wheels for python3.12, and a newer "Pillow" pip would pick, holding a link out of the tree.
    from typer.testing import CliRunner

    from lamb.cli import app

    house = tmp_path / "wheelhouse"
    house.mkdir()
    for name in target_installs["python3.12-x86_64"].wheels:
        (house / name).write_bytes((wheels.cache_dir() / name).read_bytes())
    make_wheel(house, [("PIL/__init__.py", b""), link("PIL/_imaging.so", "/usr/lib/libc.so.6")], name="pillow",
               version="999.0")
    out = tmp_path / "fn.zip"
    out.write_bytes(b"previous build")
    before = sorted(verified_copy.parent.iterdir())
    result = CliRunner().invoke(app, ["package", str(verified_copy), "--runtime", "python3.12", "--no-smoke",
                                      "--wheelhouse", str(house), "--output", str(out)])
    assert result.exit_code == 7 and "Traceback" not in result.output
    said = " ".join(result.output.split())
    assert "error: the wheel pillow-999.0-py3-none-any.whl holds a symbolic link ('PIL/_imaging.so')" in said
    assert out.read_bytes() == b"previous build" and sorted(verified_copy.parent.iterdir()) == before


# -- artifacts read on this machine: lamb invoke, lamb serve and lamb deploy ------------------------

HANDLER = b"def lambda_handler(event, context):\n    return {'ok': 1}\n"


def make_artifact(path: Path, entries: list, tweak=None) -> Path:
    """A zip holding a handler, a ``lamb.json`` and ``entries``; ``tweak(zf)`` edits the central
    directory before it is written (what an attacker's own zip tool would write)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name: that is the point
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for entry, data in [("lambda_function.py", HANDLER), ("lamb.json", b"{}"), *entries]:
                zf.writestr(entry, data)
            if tweak is not None:
                tweak(zf)
    return path


def _set(name: str, **fields):
    def tweak(zf):
        for key, value in fields.items():
            setattr(zf.getinfo(name), key, value)
    return tweak


def _bomb(zf):
    with zf.open("zeros.bin", "w") as f:  # 251 MiB of zeros deflate to about 250 KB
        for _ in range(251):
            f.write(bytes(MiB))


def _flip_crc(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("lambda_function.py")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start] ^= 0xFF  # one byte of the stored handler: its CRC-32 no longer matches
    path.write_bytes(bytes(data))


HOSTILE_ARTIFACTS = {
    "a 251 MiB member (Lambda unzips 250 MB)": ([], _bomb, "unpacks to 251.0 MB, more than the 250.0 MB"),
    "two lambda_function.py": ([("lambda_function.py", b"def lambda_handler(e, c):\n    return 2\n")], None,
                               "holds 'lambda_function.py' twice"),
    "a file and a folder of one name": ([("lambkit", b""), ("lambkit/x.py", b"")], None, "both as a file and as a folder"),
    "a file and a folder entry of one name": ([("lambkit/", b""), ("lambkit", b"")], None, "holds 'lambkit' and 'lambkit/'"),
    "an encrypted member": ([("secret.py", b"x = 1\n")], _set("secret.py", flag_bits=0x1), "encrypted entry ('secret.py')"),
    "an unknown compression method": ([("packed.py", b"x = 1\n")], _set("packed.py", compress_type=99),
                                      "'packed.py' compressed by method 99"),
    "bzip2": ([("packed.py", b"x = 1\n")], _set("packed.py", compress_type=zipfile.ZIP_BZIP2), "compressed by method 12"),
    "a symbolic link": ([link("passwd", "/etc/passwd")], None, "symbolic link ('passwd')"),
    "a climb out": ([("../../escaped.py", b"")], None, "climbs out of its folder"),
    "an absolute path": ([("/tmp/escaped.py", b"")], None, "absolute path"),
    "a newline in a name": (["evil\nname.py"], None, "control character"),
    "a part longer than a file name may be": ([("x" * 300 + ".py", b"")], None, "no file system takes"),
    "a name longer than a path may be": ([("a/" * 2100 + "x.py", b"")], None, "no file system takes"),
    "a lying size": ([("big.bin", b"x" * 1000)], _set("big.bin", file_size=2_000_000), "a ratio deflate cannot reach"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ARTIFACTS))
def test_a_hostile_artifact_is_refused_in_one_line_before_it_is_unpacked(tmp_path, monkeypatch, case):
    from typer.testing import CliRunner

    from lamb.cli import app

    entries, tweak, phrase = HOSTILE_ARTIFACTS[case]
    entries = [(e, b"") if isinstance(e, str) else e for e in entries]
    artifact = make_artifact(tmp_path / "a.zip", entries, tweak)
    (tmp_path / "e.json").write_text("{}")
    import tempfile

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where invoke unpacks: nothing may be left there
    result = CliRunner().invoke(app, ["invoke", str(artifact), "--event", str(tmp_path / "e.json")])
    assert result.exit_code == 9, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and phrase in errors[0] and str(artifact) in errors[0], result.stderr
    assert "Traceback" not in result.output and list((tmp_path / "tmp").iterdir()) == []


def test_a_damaged_artifact_is_refused_by_invoke_and_by_deploy(tmp_path):
    from lamb.deploy.artifact import read_facts
    from lamb.errors import ArtifactError
    from lamb.invoke import invoke_artifact

    artifact = tmp_path / "a.zip"
    with zipfile.ZipFile(artifact, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("lambda_function.py", HANDLER)
        zf.writestr("lamb.json", b"{}")
    _flip_crc(artifact)
    for read in (lambda: invoke_artifact(artifact, event={}), lambda: read_facts(artifact)):
        with pytest.raises(ArtifactError, match=r"is damaged: Bad CRC-32 for file 'lambda_function.py'"):
            read()
    with pytest.raises(ArtifactError, match=r"holds 'lambda_function\.py' twice"):
        read_facts(make_artifact(tmp_path / "b.zip", [("lambda_function.py", b"")]))


@pytest.mark.parametrize("record, phrase", [
    (b"[" * 200_000 + b"]" * 200_000, "nests deeper than 32 levels"),
    (b" " * (33 * MiB) + b"{}", "larger than 32 MB"),
])
def test_an_artifacts_lamb_json_is_read_within_bounds(tmp_path, record, phrase):
    from typer.testing import CliRunner

    from lamb.cli import app
    from lamb.deploy.artifact import read_facts
    from lamb.errors import ManifestError

    artifact = tmp_path / "a.zip"
    with zipfile.ZipFile(artifact, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lambda_function.py", HANDLER)
        zf.writestr("lamb.json", record)
    (tmp_path / "e.json").write_text("{}")
    result = CliRunner().invoke(app, ["invoke", str(artifact), "--event", str(tmp_path / "e.json")])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 3 and len(errors) == 1 and phrase in errors[0], result.output
    with pytest.raises(ManifestError, match=phrase):
        read_facts(artifact)
