"""The ELF audit on small ELF files built here with the system C compiler and version scripts.

Each library below is real: compiled and linked by ``cc``/``ld`` the way wheel builders do
(version scripts for versioned symbols, ``-rpath $ORIGIN/...`` as auditwheel writes it), then
judged against the Amazon Linux rows of ``targets``. Skipped where there is no C compiler.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from lamb import measured, targets
from lamb.release import audit, slim

CC = shutil.which("cc") or shutil.which("gcc")
HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine())
pytestmark = pytest.mark.skipif(CC is None or HOST_ARCH is None, reason="needs a C compiler on Linux x86_64/aarch64")


def _cc(out: Path, source: str, *args: str) -> Path:
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run([CC, "-shared", "-fPIC", "-o", str(out), str(src), *args], check=True, capture_output=True)
    src.unlink()
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A task root laid out like a pip --target install with an auditwheel-vendored library.

    - ``pkg/mod.so``: a Python extension module (exports PyInit_mod) that links the vendored
      ``pkg.libs/libvend.so.1`` through ``RUNPATH $ORIGIN/../pkg.libs`` and needs ``log`` from
      libm (GLIBC_2.29 on glibc >= 2.29) and a GLIBCXX_3.4.30 symbol from libstdc++.so.6;
    - ``pkg.libs/libvend.so.1``: defines VEND_1.0 (version script);
    - ``pkg/plugin.so``: loaded on demand only, links a library nobody ships.
    Also, outside the tree: ``stubs/libstdc++.so.6`` (a stand-in defining GLIBCXX_3.4.30, used
    only to link against) and ``newvend/libvend.so.1`` (defines VEND_2.0 too).
    """
    base = tmp_path_factory.mktemp("elves")
    stubs = base / "stubs"
    stubs.mkdir()
    (stubs / "cxx.map").write_text("GLIBCXX_3.4.30 { global: cxx_new_thing; local: *; };\n")
    _cc(stubs / "libstdc++.so.6", "int cxx_new_thing(void) { return 1; }\n",
        "-Wl,--version-script=" + str(stubs / "cxx.map"), "-Wl,-soname,libstdc++.so.6")

    root = base / "root"
    (root / "pkg.libs").mkdir(parents=True)
    (root / "pkg").mkdir()
    (base / "vend1.map").write_text("VEND_1.0 { global: vend_one; local: *; };\n")
    _cc(root / "pkg.libs" / "libvend.so.1", "int vend_one(void) { return 1; }\n",
        "-Wl,--version-script=" + str(base / "vend1.map"), "-Wl,-soname,libvend.so.1")
    newvend = base / "newvend"
    newvend.mkdir()
    (base / "vend2.map").write_text("VEND_1.0 { global: vend_one; local: *; };\nVEND_2.0 { global: vend_two; } VEND_1.0;\n")
    _cc(newvend / "libvend.so.1", "int vend_one(void) { return 1; }\nint vend_two(void) { return 2; }\n",
        "-Wl,--version-script=" + str(base / "vend2.map"), "-Wl,-soname,libvend.so.1")

    module = (
        "#include <math.h>\n"
        "int vend_one(void); int cxx_new_thing(void);\n"
        "double use(double x) { return log(x) + vend_one() + cxx_new_thing(); }\n"
        "void *PyInit_mod(void) { return 0; }\n"
    )
    _cc(root / "pkg" / "mod.so", module, "-L" + str(root / "pkg.libs"), "-l:libvend.so.1",
        "-L" + str(stubs), "-l:libstdc++.so.6", "-lm", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../pkg.libs")
    # Linked against the newer libvend (VEND_2.0), shipped with the older one (VEND_1.0 only).
    _cc(base / "newer.so", "int vend_two(void);\nint f(void) { return vend_two(); }\nvoid *PyInit_newer(void) { return 0; }\n",
        "-L" + str(newvend), "-l:libvend.so.1", "-Wl,-rpath,$ORIGIN/../pkg.libs")
    # auditwheel's layout: the extension has DT_RPATH $ORIGIN/../pkg.libs, the vendored libraries
    # have none and find each other because DT_RPATH is inherited down the load chain.
    _cc(root / "pkg.libs" / "libsib.so.1", "int sib(void) { return 3; }\n", "-Wl,-soname,libsib.so.1")
    _cc(root / "pkg.libs" / "libchain.so.1", "int sib(void);\nint chain(void) { return sib(); }\n",
        "-L" + str(root / "pkg.libs"), "-l:libsib.so.1", "-Wl,-soname,libchain.so.1")
    rmod = "int chain(void);\nint r(void) { return chain(); }\nvoid *PyInit_rmod(void) { return 0; }\n"
    _cc(root / "pkg" / "rmod.so", rmod, "-L" + str(root / "pkg.libs"), "-l:libchain.so.1",
        "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../pkg.libs")
    # The same with DT_RUNPATH, which applies to the extension's own needs only.
    _cc(base / "rmod_runpath.so", rmod, "-L" + str(root / "pkg.libs"), "-l:libchain.so.1",
        "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../pkg.libs")
    plugins = base / "plugins"
    plugins.mkdir()
    _cc(plugins / "libsdk.so", "int sdk(void) { return 1; }\n")
    _cc(root / "pkg" / "plugin.so", "int sdk(void);\nint g(void) { return sdk(); }\n", "-L" + str(plugins), "-lsdk")
    (root / "pkg" / "__init__.py").write_text("")
    return base


def _glibc_log_version() -> str:
    """The version of ``log`` this machine's libm gives new links (GLIBC_2.29 since glibc 2.29)."""
    glibc = targets.host_glibc()
    return "GLIBC_2.29" if glibc and glibc >= (2, 29) else ""


def test_reader_sees_needed_runpath_versions_and_extension(built):
    info = audit.read_elf(built / "root" / "pkg" / "mod.so", "pkg/mod.so")
    assert info.arch == HOST_ARCH and info.extension
    assert "libvend.so.1" in info.needed and "libstdc++.so.6" in info.needed
    assert info.runpath == ("$ORIGIN/../pkg.libs",) and info.rpath == ()
    assert ("libvend.so.1", "VEND_1.0") in info.version_needs
    assert ("libstdc++.so.6", "GLIBCXX_3.4.30") in info.version_needs
    vend = audit.read_elf(built / "root" / "pkg.libs" / "libvend.so.1")
    assert vend.soname == "libvend.so.1" and "VEND_1.0" in vend.version_defs and not vend.extension
    assert audit.read_elf(built / "root" / "pkg" / "__init__.py") is None
    assert slim.elf_needed(built / "root" / "pkg" / "mod.so") == list(info.needed)
    assert slim.elf_needed(built / "root" / "pkg" / "__init__.py") == []


def test_a_truncated_elf_file_is_a_problem_not_a_crash(built, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "broken.so").write_bytes((built / "root" / "pkg" / "mod.so").read_bytes()[:200])
    report = audit.audit_tree(root, targets.get_target("python3.12", HOST_ARCH))
    assert not report.passed and report.problems[0].kind == "unreadable"


def test_al2023_refuses_glibcxx_3_4_30_on_the_documented_facts(built):
    report = audit.audit_tree(built / "root", targets.get_target("python3.12", HOST_ARCH))
    # AWS documents GCC 11 for AL2023: GLIBCXX_3.4.29 at most, until lamb probe measures more
    assert [p.need for p in report.problems] == ["GLIBCXX_3.4.30"]
    assert report.rests_on == "documented" and report.provided["GLIBCXX"] == "3.4.29"
    assert report.evidence["GLIBCXX"].startswith("documented (") and "c-cplusplus.html" in report.evidence["GLIBCXX"]
    assert report.record()["rests_on"] == "documented"
    assert report.summary().startswith("FAIL (1 problem) on documented facts")


def test_the_audit_leaves_a_trail_for_verbose(built, caplog):
    with caplog.at_level("DEBUG", logger="lamb.release.audit"):
        report = audit.audit_tree(built / "root", targets.get_target("python3.12", HOST_ARCH))
    lines = [r.getMessage() for r in caplog.records if r.name == "lamb.release.audit"]
    assert any(" -> the base system" in line for line in lines), lines  # where a DT_NEEDED resolved
    assert f"audit problem: {report.problems[0].sentence()}" in lines
    assert lines[-1] == f"audit of the artifact for {report.target}: {report.summary()}"


@pytest.fixture
def gcc14_measured():
    """A probe's reading of python3.12 on this arch with GCC 14's libstdc++ (GLIBCXX_3.4.33), which
    the fixture's mod.so (GLIBCXX_3.4.30) needs; the tests of the loader's search use it."""
    measured.store(measured.Measurement(
        "python3.12", HOST_ARCH, "eu-west-1", "2026-12-06T15:00:00+00:00",
        {"glibc": "2.34", "glibcxx": "3.4.33", "cxxabi": "1.3.15", "gcc": "14.0.0"},
    ))


def test_al2023_passes_on_a_measured_libstdcxx_and_the_report_counts_resolutions(built, gcc14_measured):
    report = audit.audit_tree(built / "root", targets.get_target("python3.12", HOST_ARCH))
    assert report.passed, report.problems
    assert report.rests_on == "measured"
    assert report.evidence["GLIBCXX"] == "measured (lamb probe on python3.12-%s, eu-west-1, 2026-12-06)" % HOST_ARCH
    assert report.evidence["libraries"].startswith("inferred")  # the probe listed none
    assert report.files == 6
    # libvend through RUNPATH $ORIGIN/../pkg.libs; libchain through RPATH; libsib through the
    # RPATH libchain inherits from rmod.so
    assert report.resolved_in_artifact == 3
    assert report.resolved_in_system >= 2  # libm and libstdc++ (libc too where the linker adds it)
    assert report.newest["GLIBCXX"] == "3.4.30" and report.provided["GLIBCXX"] == "3.4.33"
    # the plugin's SDK is missing, but no import loads the plugin: reported, not failed
    assert [p.need for p in report.on_demand] == ["libsdk.so"]
    assert "PASS on measured facts" in report.summary() and "3 in the artifact" in report.summary()


def test_runpath_is_not_inherited_by_the_libraries_it_finds(built, tmp_path, gcc14_measured):
    root = tmp_path / "root"
    shutil.copytree(built / "root", root)
    (root / "pkg" / "rmod.so").write_bytes((built / "rmod_runpath.so").read_bytes())
    report = audit.audit_tree(root, targets.get_target("python3.12", HOST_ARCH))
    assert [(p.file, p.need) for p in report.problems] == [("pkg.libs/libchain.so.1", "libsib.so.1")]


def test_al2_names_the_newest_symbol_versions_it_lacks(built):
    report = audit.audit_tree(built / "root", targets.get_target("python3.11", HOST_ARCH))
    needs = [p.need for p in report.problems]
    assert "GLIBCXX_3.4.30" in needs  # AL2's libstdc++ (GCC 7.3) stops at GLIBCXX_3.4.24
    if _glibc_log_version():
        assert "GLIBC_2.29" in needs
        # glibc first: that is the library a refusal should name
        assert report.problems[0].need == "GLIBC_2.29"
        assert report.first_problem() == "pkg/mod.so needs GLIBC_2.29 (from libm.so.6); Amazon Linux 2 has glibc 2.26"
    assert "FAIL" in report.summary()


def test_a_vendored_library_must_define_the_version_asked_of_it(built, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(built / "root", root)
    (root / "pkg" / "newer.so").write_bytes((built / "newer.so").read_bytes())
    report = audit.audit_tree(root, targets.get_target("python3.12", HOST_ARCH))
    problem = next(p for p in report.problems if p.file == "pkg/newer.so")
    assert problem.need == "VEND_2.0" and "pkg.libs/libvend.so.1 does not define" in problem.detail


def test_a_library_an_import_needs_must_be_shipped_or_system(built, tmp_path, gcc14_measured):
    root = tmp_path / "root"
    shutil.copytree(built / "root", root)
    (root / "pkg.libs" / "libvend.so.1").unlink()
    report = audit.audit_tree(root, targets.get_target("python3.12", HOST_ARCH))
    assert [(p.kind, p.need) for p in report.problems] == [("missing library", "libvend.so.1")]
    assert "neither in the artifact nor in Amazon Linux 2023's base system" in report.first_problem()


def test_the_task_root_and_its_lib_folder_are_on_lambdas_library_path(built, tmp_path, gcc14_measured):
    root = tmp_path / "root"
    shutil.copytree(built / "root", root)
    (root / "lib").mkdir()
    (root / "pkg.libs" / "libvend.so.1").rename(root / "lib" / "libvend.so.1")
    assert audit.audit_tree(root, targets.get_target("python3.12", HOST_ARCH)).passed


def test_files_for_another_machine_fail(built):
    other = "arm64" if HOST_ARCH == "x86_64" else "x86_64"
    report = audit.audit_tree(built / "root", targets.get_target("python3.12", other))
    assert {p.kind for p in report.problems} == {"architecture"}
    assert f"is built for {HOST_ARCH}, not {other}" in report.first_problem()


def test_a_wheel_is_audited_as_pip_would_install_it(built, tmp_path, gcc14_measured):
    wheel = tmp_path / "pkg-1.0-cp312-cp312-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path in sorted((built / "root").rglob("*")):
            if path.is_file():
                rel = path.relative_to(built / "root").as_posix()
                # auditwheel-style layout plus one file under <dist>.data/platlib
                name = f"pkg-1.0.data/platlib/{rel}" if rel.startswith("pkg.libs/") else rel
                zf.write(path, name)
    report = audit.audit_wheel(wheel, targets.get_target("python3.12", HOST_ARCH))
    assert report.passed and report.subject == wheel.name and report.resolved_in_artifact == 3


def test_version_names():
    assert audit.parse_version("GLIBC_2.29") == ("GLIBC", (2, 29))
    assert audit.parse_version("GLIBCXX_3.4.30") == ("GLIBCXX", (3, 4, 30))
    assert audit.parse_version("CXXABI_1.3.13") == ("CXXABI", (1, 3, 13))
    assert audit.parse_version("GCC_7.0.0") == ("GCC", (7, 0, 0))
    # DT_RELR binaries (glibc >= 2.36 linkers) need this marker, which means glibc 2.36
    assert audit.parse_version("GLIBC_ABI_DT_RELR") == ("GLIBC", (2, 36))
    assert audit.parse_version("GLIBC_PRIVATE") is None
    assert audit.parse_version("VEND_1.0") is None  # not a system family


def test_every_lambda_runtime_has_a_system_baseline():
    for runtime in targets.RUNTIMES:
        for arch in targets.ARCHES:
            target = targets.Target(runtime, arch)
            system = target.system
            assert system.glibc == runtime.glibc
            assert system.has_library("libc.so.6", arch, runtime.python)
            assert system.has_library(targets.LOADERS[arch], arch, runtime.python)
    assert targets.AMAZON_LINUX_2.provides()["GLIBCXX"] == (3, 4, 24)
    assert targets.AMAZON_LINUX_2023.provides()["GLIBC"] == (2, 34)


def test_a_version_a_deploy_found_missing_caps_the_system_and_the_refusal_is_measured(built, gcc14_measured):
    from lamb.deploy import learn

    # lamb probe once read GCC 14's libstdc++; a later deploy's smoke test found GLIBCXX_3.4.30 missing
    learn.record_missing_version("python3.12", HOST_ARCH, "us-east-1", "GLIBCXX_3.4.30", "version `GLIBCXX_3.4.30' not found")
    system = targets.get_target("python3.12", HOST_ARCH).system
    assert system.provides()["GLIBCXX"] == (3, 4, 29)
    assert system.rank_of_need("GLIBCXX", (3, 4, 30)) == "measured" and system.rank_of_need("GLIBC", (2, 17)) == "measured"
    report = audit.audit_tree(built / "root", targets.get_target("python3.12", HOST_ARCH))
    assert [p.need for p in report.problems] == ["GLIBCXX_3.4.30"] and report.rests_on == "measured"
    assert "lacks GLIBCXX_3.4.30, us-east-1" in report.evidence["GLIBCXX ceiling"]
