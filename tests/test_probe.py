"""lamb probe: the probe function's reading against this machine's own tools (ldd, objdump,
pyelftools), and the AWS path against moto (create, invoke, delete; the answer stored and used
by the audit as measured)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from lamb import measured, targets
from lamb.cli import app
from lamb.errors import AwsError
from lamb.handler.lambkit.cpu import Cpu, read_cpuinfo, this_cpu
from lamb.probe import ProbeOptions, probe_aws, probe_local
from lamb.probe import function as probe_function

pytestmark = pytest.mark.skipif(targets.host_glibc() is None, reason="the probe reads glibc's loader")


@pytest.fixture(scope="module")
def local():
    return probe_local()


def _pyelftools_defs(path: str) -> list[str]:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection

    with open(path, "rb") as f:
        elf = ELFFile(f)
        section = next(s for s in elf.iter_sections() if isinstance(s, GNUVerDefSection))
        return [next(iter(auxiliaries)).name for _verdef, auxiliaries in section.iter_versions()]


def test_local_glibc_is_what_ldd_says(local):
    first = subprocess.run(["ldd", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    assert local.facts["glibc"] == first.split()[-1]
    assert local.region == "local" and local.stored is None  # a reading of this machine is never stored


def test_local_libstdcxx_versions_are_what_objdump_and_pyelftools_read(local):
    path = local.facts["libstdcxx"]
    assert path and "libstdc++.so.6" in path
    defs = _pyelftools_defs(path)
    assert probe_function.version_definitions(path) == defs
    highest = max(tuple(int(x) for x in d.split("_")[1].split(".")) for d in defs if d.startswith("GLIBCXX_3"))
    assert local.facts["glibcxx"] == ".".join(map(str, highest))
    if shutil.which("objdump"):
        dump = subprocess.run(["objdump", "-T", path], capture_output=True, text=True, check=True).stdout
        newest = max({tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBCXX_(\d+\.\d+\.\d+)", dump)})
        assert local.facts["glibcxx"] == ".".join(map(str, newest))
        abi = max({tuple(int(x) for x in v.split(".")) for v in re.findall(r"\bCXXABI_(\d+\.\d+(?:\.\d+)?)\b", dump)})
        assert local.facts["cxxabi"] == ".".join(map(str, abi))


def test_local_libgcc_s_and_the_rest(local):
    assert probe_function.version_definitions(local.facts["libgcc_s"]) == _pyelftools_defs(local.facts["libgcc_s"])
    assert re.fullmatch(r"\d+(\.\d+)+", local.facts["gcc"])
    assert "libc.so.6" in local.facts["system_libraries"]
    assert local.facts["python"].startswith(targets.host_python())
    assert local.facts["os_release"].get("ID")


def test_local_reads_the_cpu_as_lambkit_does(local):
    assert local.facts["cpuinfo"] == read_cpuinfo() and local.cpu == this_cpu()


def test_a_file_that_is_not_elf_has_no_versions(tmp_path):
    (tmp_path / "x.so").write_bytes(b"not an ELF file")
    assert probe_function.version_definitions(str(tmp_path / "x.so")) == []
    assert probe_function.newest(["GLIBCXX_3.4.9", "GLIBCXX_3.4.30", "CXXABI_TM_1", "GLIBCXX_3.4"], "GLIBCXX") == "3.4.30"
    assert probe_function.newest(["CXXABI_TM_1"], "CXXABI") is None


def test_cli_local_json():
    result = CliRunner().invoke(app, ["probe", "--local", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["region"] == "local" and report["facts"]["glibc"] == "%d.%d" % targets.host_glibc()


def test_cli_local_table_is_the_rendered_report():
    result = CliRunner().invoke(app, ["probe", "--local"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    glibc = "%d.%d" % targets.host_glibc()
    assert "this machine (local, " in result.output and any(
        "glibc" in line and glibc in line for line in result.output.splitlines()
    )
    assert "newest GLIBCXX_" in result.output and "stored as" not in result.output  # --local stores nothing
    assert this_cpu().describe() in result.output


# -- on AWS (moto) -----------------------------------------------------------------------------


@pytest.fixture
def moto(aws_env):
    """moto without Docker (the invoke answer is queued), with AWS's managed policies in IAM."""
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}, "iam": {"load_aws_managed_policies": True}}):
        yield


def _answer_with(facts: dict) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.moto_api._internal import moto_api_backend

    moto_api_backend.set_lambda_simple_result(json.dumps(facts), account_id=DEFAULT_ACCOUNT_ID, region="eu-west-1")


def _session():
    from lamb.deploy.aws import AwsSession

    return AwsSession(region="eu-west-1", waiter_delay_s=0)


def _exists(session, name: str) -> tuple[bool, bool]:
    lam, iam = session.client("lambda"), session.client("iam")
    functions = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    return name in functions, f"{name}-role" in roles


def test_probe_creates_invokes_deletes_and_stores_what_the_function_answered(moto, local):
    # the answer Lambda would give: this machine's real probe reading, as if AL2023 had GCC 14's libstdc++
    answer = {**local.facts, "glibc": "2.34", "glibcxx": "3.4.33", "cxxabi": "1.3.15", "gcc": "14.0.0",
              "aws_execution_env": "AWS_Lambda_python3.14"}
    _answer_with(answer)
    session = _session()
    report = probe_aws(ProbeOptions(runtime="python3.14", arch="arm64"), aws=session)
    assert report.calls == [
        "iam create_role", "iam attach_role_policy", "lambda create_function", "lambda publish_version", "lambda invoke",
        "lambda delete_function", "iam detach_role_policy", "iam delete_role",
    ]
    assert _exists(session, "lamb-probe-python3-14-arm64") == (False, False)
    assert report.facts == answer and report.region == "eu-west-1"
    stored = measured.load("python3.14", "arm64")
    assert stored is not None and stored.facts == answer and stored.region == "eu-west-1"
    # later audits judge by it, as measured
    system = targets.get_target("python3.14", "arm64").system
    assert system.glibcxx == (3, 4, 33) and system.rank("GLIBCXX") == "measured"
    assert "eu-west-1" in system.evidence["GLIBCXX"].source


def test_the_cpu_lambda_ran_the_probe_on_is_stored_per_arch(moto, local):
    # Graviton3's first processor as Linux writes it: lamb reads its model and instruction sets.
    graviton3 = ("processor\t: 0\nFeatures\t: fp asimd asimddp sve i8mm bf16\nCPU implementer\t: 0x41\n"
                 "CPU architecture: 8\nCPU part\t: 0xd40\n")
    _answer_with({**local.facts, "glibc": "2.34", "machine": "aarch64", "cpuinfo": graviton3})
    report = probe_aws(ProbeOptions(runtime="python3.13", arch="arm64"), aws=_session())
    assert report.cpu == Cpu("Neoverse-V1 (Graviton3)", "arm64", ("ASIMD dot-product", "SVE", "i8mm"))
    # Any runtime's probe tells the arch's CPU; this machine's own (--local) reading never does.
    assert [cpu for cpu, _m in measured.cpus("arm64")] == [report.cpu]
    assert measured.cpus("x86_64") == []


def test_keep_leaves_the_function_and_role(moto, local):
    _answer_with(local.facts)
    session = _session()
    report = probe_aws(ProbeOptions(runtime="python3.13", arch="x86_64", keep=True), aws=session)
    assert report.kept and "lambda delete_function" not in report.calls
    assert _exists(session, "lamb-probe-python3-13-x86-64") == (True, True)


def test_an_answer_without_facts_is_refused_and_everything_is_deleted(moto):
    _answer_with({"errorMessage": "Unable to import module 'lambda_function'"})
    session = _session()
    with pytest.raises(AwsError, match="did not answer with its facts"):
        probe_aws(ProbeOptions(runtime="python3.12", arch="arm64"), aws=session)
    assert _exists(session, "lamb-probe-python3-12-arm64") == (False, False)
    assert measured.load("python3.12", "arm64") is None


def test_plan_prints_the_calls_and_calls_nothing(aws_env):
    result = CliRunner().invoke(app, ["probe", "--runtime", "python3.13", "--arch", "arm64", "--plan", "--region", "eu-west-1"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith(("aws ", "ROLE_ARN="))]
    assert lines[0].startswith("ROLE_ARN=$(aws iam create-role --role-name lamb-probe-python3-13-arm64-role")
    create = next(ln for ln in lines if ln.startswith("aws lambda create-function --function-name lamb-probe-python3-13-arm64 "))
    assert "--runtime python3.13" in create and "--architectures arm64" in create and "--memory-size 128" in create
    assert any(ln.startswith("aws lambda invoke --function-name lamb-probe-python3-13-arm64") for ln in lines)
    assert lines[-1].startswith("aws iam delete-role --role-name lamb-probe-python3-13-arm64-role")
    assert measured.load("python3.13", "arm64") is None


def test_without_credentials_the_first_refusal_is_the_one_said(aws_env, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(AwsError) as err:  # not the clean-up's refusal, which would follow it
        probe_aws(ProbeOptions(runtime="python3.13", arch="arm64", region="eu-west-1"))
    assert err.value.message.startswith("no AWS credentials for checking who is deploying")
