"""The manifest: round trips, refusals, paths relative to its folder, and the package record an
artifact carries (read without unpacking it)."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import pytest

from lamb import layout
from lamb import manifest as mf
from lamb.errors import ManifestError


def make_manifest(**changes) -> mf.Manifest:
    base = mf.Manifest(
        model=mf.ModelEntry("m.tflite", "tflite", "ab" * 32, 10), source="m.h5", source_sha256=None,
        source_format="h5", source_bytes=20, loader="keras",
        inputs=[mf.TensorSpec("x", [-1, 8, 8, 3], "float32")], outputs=[mf.TensorSpec("y", [-1, 2], "float32")],
        quantization="float32", preprocess="none",
    )
    return dataclasses.replace(base, **changes)


def make_record(**changes) -> mf.PackageRecord:
    base = mf.PackageRecord(
        target="python3.12-arm64", runtime="python3.12", python="3.12", arch="arm64", os="Amazon Linux 2023",
        glibc="2.34", format="zip", handler=layout.HANDLER, runtime_lib="ai-edge-litert", runtime_lib_version="2.3.0",
        installed={"ai-edge-litert": "2.3.0", "numpy": "2.3.5"}, lamb_version="0.1.0",
    )
    return dataclasses.replace(base, **changes)


def test_round_trip_with_verification_and_package(tmp_path):
    smoke = mf.SmokeResult(True, True, False, "the artifact itself", init_ms=190.0, invoke_ms=12.5, peak_rss_mb=80.0)
    record = make_record(artifact="m-python3.12-arm64.zip", sha256="cd" * 32, zipped_bytes=5, unzipped_bytes=9, smoke=smoke)
    verification = mf.Verification(True, "ab" * 32, "ai-edge-litert", "2.3.0", 10, 0, 0, {"atol": 1e-5}, [])
    m = make_manifest(verification=verification, package=record, labels=["a", "b"])
    path = mf.write(m, tmp_path / "m.lamb.json")
    again = mf.read(path)
    assert again == m and isinstance(again.package.smoke, mf.SmokeResult)
    assert again.package.artifact_path(path) == tmp_path / "m-python3.12-arm64.zip"


def test_a_manifest_without_a_package_record_still_reads(tmp_path):
    """Manifests written before lamb kept package records have no "package" key."""
    data = make_manifest().to_dict()
    del data["package"]
    path = tmp_path / "old.lamb.json"
    path.write_text(json.dumps(data))
    assert mf.read(path).package is None


@pytest.mark.parametrize(("text", "match"), [
    ("{nope", "not a readable"),
    ("[1, 2]", "not a lamb manifest"),
    ('{"schema_version": 99}', "schema version 99"),
    ('{"schema_version": 2, "colour": "red"}', "does not know: colour"),
    ('{"schema_version": 2, "model": {"file": "m.tflite"}}', "incomplete"),
    ('{"schema_version": 1, "tflite": "m.tflite"}', "version-1 manifest has no 'tflite_sha256'"),
])
def test_refusals_name_the_problem(tmp_path, text, match):
    path = tmp_path / "m.lamb.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=match):
        mf.read(path)


def test_an_incomplete_package_record_is_refused(tmp_path):
    data = make_manifest().to_dict()
    data["package"] = {"target": "python3.12-x86_64"}
    path = tmp_path / "m.lamb.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="incomplete"):
        mf.read(path)


def test_find_and_stem(tmp_path):
    with pytest.raises(ManifestError, match="no lamb manifest"):
        mf.find(tmp_path)
    mf.write(make_manifest(), tmp_path / "a.b.lamb.json")
    assert mf.find(tmp_path) == tmp_path / "a.b.lamb.json"
    assert mf.model_stem(tmp_path / "a.b.lamb.json") == "a.b"
    assert mf.manifest_path_for(Path("x/model.tflite")) == Path("x/model.lamb.json")
    mf.write(make_manifest(), tmp_path / "c.lamb.json")
    with pytest.raises(ManifestError, match="several manifests"):
        mf.find(tmp_path)


def test_paths_relative_to_the_manifest(tmp_path):
    manifest_path = tmp_path / "m.lamb.json"
    assert mf.relative_to_manifest(manifest_path, tmp_path / "sub" / "m.tflite") == "sub/m.tflite"
    m = make_manifest(model=mf.ModelEntry("sub/m.tflite", "tflite", "ab" * 32, 10))
    assert m.model_path(manifest_path) == tmp_path / "sub" / "m.tflite"


def test_a_shared_folder_still_finds_the_source_model(tmp_path):
    """out/m.lamb.json records ../models/m.h5: the pair moved (or cloned) elsewhere still verifies."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.h5").write_bytes(b"h5")
    out = tmp_path / "out"
    stored = mf.relative_to_manifest(out / "m.lamb.json", tmp_path / "models" / "m.h5")
    assert stored == "../models/m.h5"
    mf.write(make_manifest(source=stored), out / "m.lamb.json")
    moved = tmp_path / "elsewhere"
    (tmp_path / "models").rename(tmp_path / "elsewhere-models")
    moved.mkdir()
    (moved / "models").symlink_to(tmp_path / "elsewhere-models")
    (moved / "out").mkdir()
    (out / "m.lamb.json").rename(moved / "out" / "m.lamb.json")
    m = mf.read(moved / "out" / "m.lamb.json")
    assert m.source_path(moved / "out" / "m.lamb.json").read_bytes() == b"h5"


def test_a_folder_moved_without_its_source_falls_back_to_where_it_was(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.h5").write_bytes(b"h5")
    m = make_manifest().with_source(tmp_path / "out" / "m.lamb.json", tmp_path / "models" / "m.h5")
    assert (m.source, m.source_absolute) == ("../models/m.h5", str((tmp_path / "models" / "m.h5").resolve()))
    moved = tmp_path / "a" / "b" / "m.lamb.json"  # ../models/m.h5 from here does not exist
    assert m.source_path(moved) == (tmp_path / "models" / "m.h5").resolve()


def test_read_shipped_from_a_zip_and_a_folder_without_unpacking(tmp_path):
    shipped = make_manifest(model=mf.ModelEntry("model.tflite", "tflite", "ab" * 32, 10), package=make_record())
    text = json.dumps(shipped.to_dict())
    zip_path = tmp_path / "fn.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr(layout.MANIFEST_FILE, text)
        zf.writestr(layout.HANDLER_FILE, "")
    folder = tmp_path / "ctx"
    folder.mkdir()
    (folder / layout.MANIFEST_FILE).write_text(text)
    for artifact in (zip_path, folder):
        assert mf.read_shipped(artifact) == shipped
        assert mf.package_record(artifact) == make_record()
    assert not (tmp_path / "model.tflite").exists()  # nothing was extracted


def test_an_artifact_without_a_record(tmp_path):
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(bare, "w") as zf:
        zf.writestr(layout.MANIFEST_FILE, "{}")  # not lamb's, or from before it kept records
    assert mf.package_record(bare) is None
    assert mf.package_record(tmp_path / "missing.zip") is None
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ManifestError, match=r"no readable lamb.json"):
        mf.read_shipped(tmp_path / "junk.zip")


def test_atomic_write_leaves_no_temp_file(tmp_path):
    mf.atomic_write_bytes(tmp_path / "f.bin", b"one")
    mf.atomic_write_bytes(tmp_path / "f.bin", b"two")
    assert (tmp_path / "f.bin").read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert mf.sha256_file(tmp_path / "f.bin") == "3fc4ccfe745870e2c0d99f71f30ff0656c8dedd41cc1d7d3d376b0dbe685e2f3"


def test_the_preprocessing_modes_are_the_shipped_handlers():
    # The handler cannot import lamb, so it names its preprocessors itself; the two must agree.
    from lamb.handler.lambkit import PREPROCESSORS

    assert mf.PREPROCESS_MODES == tuple(PREPROCESSORS)


def test_every_artifacts_record_is_kept_by_its_key(tmp_path):
    """Issue 17: packaging an image and then a zip keeps the image's record (a zip by its sha256,
    an image context by its path); rebuilding an artifact at the same path replaces its record."""
    path = tmp_path / "m.lamb.json"
    image = make_record(format="image", artifact="m-image", smoke=mf.SmokeResult(True, True, False, "image", peak_rss_mb=300.0))
    first_zip = make_record(artifact="m.zip", sha256="11" * 32, smoke=mf.SmokeResult(True, True, False, "zip", peak_rss_mb=200.0))
    rebuilt = dataclasses.replace(first_zip, sha256="22" * 32)
    m = make_manifest().with_package(image).with_package(first_zip).with_package(rebuilt)
    mf.write(m, path)
    m = mf.read(path)
    assert m.package == rebuilt and set(m.packages) == {"m-image", "22" * 32}
    assert m.record_of(tmp_path / "m-image", path) == image
    assert m.record_of(tmp_path / "m.zip", path, "22" * 32) == rebuilt
    assert m.record_of(tmp_path / "m.zip", path, "11" * 32) is None  # another build's figures
    assert m.record_of(tmp_path / "other.zip", path) is None


def test_deploy_finds_an_image_contexts_figures_after_a_zip_was_packaged(tmp_path):
    from conftest import make_deploy_artifact

    from lamb.deploy.artifact import read_facts

    zip_path = make_deploy_artifact(tmp_path / "out", runtime="python3.12")  # its manifest records the zip
    manifest_path = tmp_path / "out" / "model.lamb.json"
    context = tmp_path / "out" / "model-python3.12-x86_64-image"
    context.mkdir()
    shipped = mf.read_shipped(zip_path)
    image = dataclasses.replace(shipped.package, format="image")
    mf.write(dataclasses.replace(shipped, package=image), context / layout.MANIFEST_FILE)
    (context / layout.HANDLER_FILE).write_text("def lambda_handler(event, context):\n    return {}\n")
    smoke = mf.SmokeResult(True, True, False, "the image's handler", init_ms=300.0, invoke_ms=250.0, peak_rss_mb=333.0)
    image_full = dataclasses.replace(image, artifact=context.name, smoke=smoke)
    zip_full = mf.read(manifest_path).package
    # The image first, then the zip: the order the user packaged them in.
    mf.write(mf.read(manifest_path).with_package(image_full).with_package(zip_full), manifest_path)
    assert read_facts(context).peak_rss_mb == 333.0
    assert read_facts(zip_path).peak_rss_mb == 241.0


# -- the files a manifest names (issue 24 item 1) -------------------------------------------------


def _beside(tmp_path: Path, model_file: str | None = None, external: dict[str, bytes] | None = None):
    """A folder with a model file m.onnx (and its external data), and a manifest naming them."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "m.onnx").write_bytes(b"model bytes")
    for name, data in (external or {}).items():
        (folder / name).write_bytes(data)
    entry = mf.ModelEntry(model_file or "m.onnx", "onnx", mf.sha256_file(folder / "m.onnx"), 11,
                          external_data=list(external or {}),
                          external_sha256={n: mf.sha256_file(folder / n) for n in external or {}})
    path = mf.write(make_manifest(model=entry), folder / "m.lamb.json")
    return path, mf.read(path)


def test_the_model_files_checked_are_the_recorded_ones_beside_the_manifest(tmp_path):
    path, m = _beside(tmp_path, external={"m.onnx.data": b"weights"})
    assert m.model_files(path) == [path.parent / "m.onnx", path.parent / "m.onnx.data"]


@pytest.mark.parametrize("named", ["absolute", "../host.txt"])
def test_a_model_named_outside_the_manifests_folder_is_refused(tmp_path, named):
    path, m = _beside(tmp_path)
    host = tmp_path / "host.txt"  # a file of the host's, beside the model's folder
    host.write_text("host secret")
    named = str(host) if named == "absolute" else named
    m = dataclasses.replace(m, model=dataclasses.replace(m.model, file=named, sha256=mf.sha256_file(host)))
    with pytest.raises(ManifestError, match=rf"the model {host} lies outside the manifest's folder"):
        m.model_files(path)


def test_a_linked_model_or_folder_or_external_data_is_refused(tmp_path):
    path, m = _beside(tmp_path, external={"m.onnx.data": b"weights"})
    host = tmp_path / "host.txt"
    host.write_text("host secret")
    (path.parent / "m.onnx.data").unlink()
    (path.parent / "m.onnx.data").symlink_to(host)
    with pytest.raises(ManifestError, match=r"external data .*m.onnx.data is a symbolic link"):
        m.model_files(path)
    (path.parent / "m.onnx.data").unlink()
    (path.parent / "m.onnx.data").symlink_to(path.parent / "m.onnx")  # a link that stays inside is no file either
    with pytest.raises(ManifestError, match=r"m.onnx.data is a symbolic link"):
        m.model_files(path)
    (path.parent / "m.onnx.data").unlink()
    (path.parent / "m.onnx.data").hardlink_to(host)  # a regular file, in the folder, and the host's own
    with pytest.raises(ManifestError, match=r"m.onnx.data is a hard link \(2 names\)"):
        m.model_files(path)
    (path.parent / "sub").symlink_to(host.parent)
    moved = dataclasses.replace(m, model=dataclasses.replace(m.model, file="sub/host.txt"))
    with pytest.raises(ManifestError, match="lies outside the manifest's folder"):
        moved.model_files(path)


def test_a_changed_or_unhashed_file_or_a_folder_is_refused(tmp_path):
    path, m = _beside(tmp_path, external={"m.onnx.data": b"weights"})
    (path.parent / "m.onnx.data").write_bytes(b"other weights")
    with pytest.raises(ManifestError, match=r"m.onnx.data is not the file `lamb convert` recorded \(sha256") as err:
        m.model_files(path)
    assert "re-run `lamb convert`" in err.value.hint
    unhashed = dataclasses.replace(m, model=dataclasses.replace(m.model, external_sha256={}))
    with pytest.raises(ManifestError, match=r"records no sha256 for m.onnx.data"):
        unhashed.model_files(path)
    (path.parent / "m.onnx").write_bytes(b"model bytes, changed")
    with pytest.raises(ManifestError, match=r"m.onnx is not the file"):
        m.model_files(path)
    (path.parent / "m.onnx").unlink()
    with pytest.raises(ManifestError, match="which does not exist"):
        m.model_files(path)
    (path.parent / "m.onnx").mkdir()
    with pytest.raises(ManifestError, match=r"m.onnx is not a regular file"):
        m.model_files(path)


@pytest.mark.parametrize("text, phrase", [
    ("[" * 200_000 + "]" * 200_000, "nests deeper than 32 levels"),  # a RecursionError traceback before
    ('{"a": ' * 40 + "1" + "}" * 40, "nests deeper than 32 levels"),  # parses, but past what any record holds
    (" " * (33 * 2**20) + "{}", "larger than 32 MB"),  # 1.5 GB of spaces took 2.9 GB to refuse
])
def test_a_manifest_is_read_within_a_size_and_a_depth(tmp_path, text, phrase):
    path = tmp_path / "m.lamb.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=phrase) as err:
        mf.read(path)
    assert str(path) in err.value.message and "\n" not in err.value.message
