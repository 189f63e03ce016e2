"""Progress: drawn on a terminal's stderr only, never with --json or into a pipe; steps report phases."""

from __future__ import annotations

import io

import pytest

from lamb import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Recorder(progress.Progress):
    """What a step reported: (phase, total) and the count advanced within it."""

    def __init__(self):
        self.phases: list[list] = []

    def phase(self, description, total=None):
        self.phases.append([description, total, 0])

    def advance(self, n=1):
        self.phases[-1][2] += n


def test_nothing_is_drawn_into_a_pipe_or_with_json():
    assert not progress.shows(False, io.StringIO())
    assert not progress.shows(True, Terminal())
    assert progress.shows(False, Terminal())
    with progress.for_terminal(False, io.StringIO()) as shown:
        assert shown is progress.SILENT
        shown.phase("anything", total=3)
        shown.advance()  # the silent default accepts every call


def test_a_terminal_sees_each_phase_and_is_left_clean():
    stream = Terminal()
    with progress.for_terminal(False, stream) as shown:
        assert isinstance(shown, progress.RichProgress)
        shown.phase("loading")
        shown.phase("calibrating", total=4)
        for _ in range(4):
            shown.advance()
        tasks = shown._bar.tasks
        assert [t.description for t in tasks] == ["loading", "calibrating"]
        assert tasks[0].finished and tasks[1].completed == 4
    assert "calibrating" in stream.getvalue()


@pytest.mark.network  # the target's wheels (cached after the first run)
def test_package_reports_its_phases(tmp_path, verified_tiny, target_installs):
    from lamb.package import build_package

    seen = Recorder()
    build_package(verified_tiny, runtime="python3.12", fmt="image", output=tmp_path / "ctx", smoke=False, progress=seen)
    names = [p[0] for p in seen.phases]
    resolving = next(i for i, n in enumerate(names) if n.startswith("resolving wheels for python3.12-x86_64"))
    auditing = next(i for i, n in enumerate(names) if n.startswith("auditing the ELF files"))
    assert resolving < auditing < len(names) - 1 and names[-1] == "writing ctx/"


def test_convert_counts_its_calibration_images(tmp_path, tiny_classifier_h5, sample_images):
    from lamb.convert import convert_model

    seen = Recorder()
    with progress.reporting(seen):
        convert_model(tiny_classifier_h5, tmp_path / "t.tflite", quantize="int8", calibration=sample_images, preprocess="xception")
    phases = {p[0]: p for p in seen.phases}
    assert seen.phases[0][0].startswith("loading ")
    reading = phases["reading calibration images"]
    assert reading[1] == reading[2] == 12
    calibrating = next(p for name, p in phases.items() if name.startswith("converting to tflite, calibrating int8 on 12"))
    assert calibrating[1] == 12 and calibrating[2] >= 12  # the converter's pass over them


def test_verify_counts_both_sides(verified_copy):
    from lamb.verify import VerifyInputs, verify_model

    seen = Recorder()
    with progress.reporting(seen):
        assert verify_model(manifest_path=verified_copy, inputs=VerifyInputs(samples=5)).passed
    counted = {p[0].split(":")[0]: (p[1], p[2]) for p in seen.phases if p[1] is not None}
    assert next(done for name, done in counted.items() if name.startswith("the source ")) == (5, 5)
    assert any(name.startswith("ai-edge-litert") and done == (5, 5) for name, done in counted.items())
