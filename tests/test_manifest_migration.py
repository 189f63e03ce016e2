"""Version-1 manifests and artifacts, written by lamb before the version-2 record (tests/fixtures/v1,
see its README), are read through lamb.manifest's one migration: they still verify, package,
invoke and deploy. And a hand-edited manifest with a wrong type is one sentence naming the field."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lamb import manifest as mf
from lamb.cli import app
from lamb.errors import ManifestError

V1 = Path(__file__).parent / "fixtures" / "v1"


@pytest.fixture
def v1_folder(tmp_path) -> Path:
    """A private copy of the version-1 folder: v1.h5, v1.tflite and the manifest lamb wrote for them."""
    folder = tmp_path / "v1"
    folder.mkdir()
    for name in ("v1.h5", "v1.tflite", "v1.lamb.json"):
        shutil.copy2(V1 / name, folder / name)
    return folder / "v1.lamb.json"


def test_a_version_1_manifest_reads_as_version_2():
    raw = json.loads((V1 / "v1.lamb.json").read_text())
    assert raw["schema_version"] == 1 and "tflite" in raw  # the fixture is what version 1 wrote
    m = mf.read(V1 / "v1.lamb.json")
    assert m.schema_version == mf.SCHEMA_VERSION == 2
    assert m.model == mf.ModelEntry("v1.tflite", "tflite", raw["tflite_sha256"], raw["tflite_bytes"], [])
    assert m.model_path(V1 / "v1.lamb.json") == V1 / "v1.tflite"
    v, p = m.verification, m.package
    assert v.passed and v.model_sha256 == raw["tflite_sha256"]
    assert (v.runtime_lib, v.runtime_lib_version) == ("ai-edge-litert", raw["verification"]["runtime_version"])
    assert "model_name" in v.metrics[0] and "tflite_name" not in v.metrics[0]
    assert (p.runtime_lib, p.runtime_lib_version) == (raw["package"]["tflite_lib"], raw["package"]["tflite_lib_version"])
    assert m.packages == {p.sha256: p}  # the one record version 1 kept, under its artifact's key
    # Written back, it is version 2 and reads the same.
    again = mf.Manifest.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m and "tflite" not in m.to_dict()


def test_a_version_1_artifacts_record_reads_as_version_2(tmp_path):
    raw = json.loads((V1 / "artifact-lamb.json").read_text())
    assert raw["schema_version"] == 1 and raw["tflite"] == "model.tflite"
    artifact = tmp_path / "v1.zip"
    with zipfile.ZipFile(artifact, "w") as zf:
        zf.writestr("lamb.json", json.dumps(raw))
    shipped = mf.read_shipped(artifact)
    assert shipped.model.file == "model.tflite" and shipped.model.format == "tflite"
    assert mf.package_record(artifact).runtime_lib == "ai-edge-litert"


# -- types, checked on read in one place (issue 17) ------------------------------------------------


@pytest.mark.parametrize(("version", "field", "value", "says"), [
    (1, "labels", 5, "the manifest's 'labels' is a whole number (5); expected a list"),
    (1, "tflite", 123, "the manifest's 'tflite' is a whole number (123); expected a string"),
    (1, "inputs", None, "the manifest's 'inputs' is null; expected a list"),
    (1, "outputs", "x", "the manifest's 'outputs' is a string (\"x\"); expected a list"),
    (1, "preprocess", ["x"], "the manifest's 'preprocess' is a list ([\"x\"]); expected a string"),
    (2, "labels", [1, 2, 3], "the manifest's 'labels[0]' is a whole number (1); expected a string"),
    (2, "model", "v1.tflite", "the manifest's 'model' is a string (\"v1.tflite\"); expected an object"),
    (2, "quantization", True, "the manifest's 'quantization' is true or false (true); expected a string"),
    (2, "source_bytes", 1.5, "the manifest's 'source_bytes' is a number (1.5); expected a whole number"),
])
def test_a_wrong_type_is_one_sentence_naming_the_field(v1_folder, version, field, value, says):
    data = json.loads(v1_folder.read_text())
    if version == 2:
        data = mf.read(v1_folder).to_dict()
    data[field] = value
    v1_folder.write_text(json.dumps(data))
    with pytest.raises(ManifestError) as info:
        mf.read(v1_folder)
    assert info.value.message == says
    # and through the CLI: exit code 3, one line, no traceback
    result = CliRunner().invoke(app, ["verify", "--manifest", str(v1_folder)])
    assert result.exit_code == 3, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert says in " ".join(result.output.split()) and "Traceback" not in result.output


def test_nested_wrong_types_name_their_path(v1_folder):
    data = mf.read(v1_folder).to_dict()
    data["inputs"][0]["shape"] = [1, "224"]
    data["verification"]["passed"] = "yes"
    v1_folder.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"'inputs\[0\]\.shape\[1\]' is a string"):
        mf.read(v1_folder)
    data["inputs"][0]["shape"] = [1, 224]
    v1_folder.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"'verification\.passed' is a string \(\"yes\"\); expected true or false"):
        mf.read(v1_folder)


# -- version 1 through the pipeline ------------------------------------------------------------------


def test_a_version_1_manifest_still_verifies(v1_folder):
    from lamb.verify import verify_model

    report = verify_model(manifest_path=v1_folder)
    assert report.passed and report.recorded and report.runtime_lib == "ai-edge-litert"
    written = json.loads(v1_folder.read_text())
    assert written["schema_version"] == 2 and written["model"]["format"] == "tflite"
    assert written["verification"]["model_sha256"] == mf.sha256_file(v1_folder.parent / "v1.tflite")


@pytest.mark.network  # wheels for python3.14 (cached after the first run)
def test_a_version_1_manifest_packages_and_a_version_1_artifact_invokes_and_deploys(
    v1_folder, tmp_path, png_bytes, aws_env, target_installs,
):
    from lamb.deploy.artifact import read_facts
    from lamb.invoke import invoke_artifact
    from lamb.local import RunSettings
    from lamb.package import build_package

    # The version-1 manifest's own verification (recorded by version 1) is what package trusts.
    # For the target the version-1 artifact was built for (lamb's default then, python3.14).
    built = build_package(v1_folder, runtime="python3.14", output=tmp_path / "fn.zip")
    assert built.smoke.passed and built.record.runtime_lib == "ai-edge-litert"
    assert json.loads(v1_folder.read_text())["schema_version"] == 2

    # A version-1 artifact: the same files with the lamb.json version 1 shipped.
    v1_zip = tmp_path / "v1-artifact.zip"
    with zipfile.ZipFile(built.artifact) as src, zipfile.ZipFile(v1_zip, "w") as dst:
        for item in src.infolist():
            data = (V1 / "artifact-lamb.json").read_bytes() if item.filename == "lamb.json" else src.read(item)
            dst.writestr(item, data)
    image = tmp_path / "cat.png"
    image.write_bytes(png_bytes)
    answer = invoke_artifact(v1_zip, image=image, settings=RunSettings(memory_mb=512))
    assert answer.error is None and set(answer.response) == {"cat", "dog", "bird"}

    facts = read_facts(v1_zip)  # deploy reads the artifact's own (version-1) record
    assert (facts.package_type, facts.runtime, facts.arch, facts.handler) == (
        "Zip", "python3.14", "x86_64", "lambda_function.lambda_handler")
    _deploy_on_moto(v1_zip)


def _deploy_on_moto(artifact: Path) -> None:
    import boto3
    import requests
    from moto import mock_aws

    from lamb.deploy import DeployOptions, deploy_artifact
    from lamb.deploy import plan as planning
    from lamb.deploy.aws import AwsSession

    region = "eu-west-1"
    with mock_aws(config={"lambda": {"use_docker": False}}):
        role = boto3.client("iam").create_role(
            RoleName="lambda-basic", AssumeRolePolicyDocument=json.dumps(planning.TRUST_POLICY))["Role"]["Arn"]
        requests.post("http://motoapi.amazonaws.com/moto-api/static/lambda-simple/response",
                      json={"results": [json.dumps({"cat": 0.5})], "region": region})
        report = deploy_artifact(artifact, DeployOptions(function_name="v1fn", role_arn=role, memory_mb=1024, timeout_s=30), session=AwsSession(region=region))
        assert report.action == "created" and report.smoke.passed
        config = boto3.client("lambda", region_name=region).get_function(FunctionName="v1fn")["Configuration"]
        assert (config["Runtime"], config["Handler"]) == ("python3.14", "lambda_function.lambda_handler")
