"""The model a user brings, its source: a Keras file, a SavedModel folder or an exported ONNX file,
each behind one interface (``Source`` and ``Loaded``, ``lamb.source.base``).

``open_source`` is the one place that tells them apart, by a file's suffix and first bytes or a
folder's shape; convert, verify and compare ask the source it returns and never look at a suffix.
TensorFlow and Keras are imported only inside the Keras and SavedModel sources, when a model loads.

Modules: ``base`` (the protocols, ``InputSpec``, ``--input-shape``), ``keras`` (.h5 and .keras
files), ``savedmodel`` (SavedModel folders), ``tf_load`` (the TensorFlow loaders both use, and the
model as Keras runs it), ``keras_preprocess`` (what a Keras model shows of its preprocessing),
``onnx`` (.onnx files and their external data).
"""

from __future__ import annotations

from pathlib import Path

from lamb.errors import InputError
from lamb.source import keras as _keras
from lamb.source import onnx as _onnx
from lamb.source.base import AsGiven, InputSpec, Loaded, ReferenceOutputs, Source, apply_input_shape, source_bytes
from lamb.source.keras import KerasSource, detect_format
from lamb.source.onnx import OnnxSource
from lamb.source.savedmodel import SavedModelSource

__all__ = [
    "AsGiven", "InputSpec", "Loaded", "ReferenceOutputs", "Source", "apply_input_shape", "open_source", "save_from_memory",
    "source_bytes",
]

WHAT_LAMB_READS = "a Keras .h5 or .keras file, a SavedModel folder, or an exported .onnx (PyTorch: torch.onnx.export)"

# What PyTorch saves (checkpoints, TorchScript): weights and Python pickles, no graph lamb could run.
_PYTORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")


def open_source(path: Path) -> Source:
    """The source at ``path``; an InputError naming what lamb reads when nothing is there or it is
    none of them. Nothing loads yet (``Source.load``)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no model at {path}", f"check the path; lamb reads {WHAT_LAMB_READS}")
    if path.suffix.lower() in _PYTORCH_SUFFIXES:
        raise InputError(
            f"{path.name} is a PyTorch file (weights and Python objects), which lamb cannot run",
            "export the model to ONNX first: torch.onnx.export(model, torch.randn(1, 3, H, W), 'model.onnx', "
            "external_data=True), then `lamb convert model.onnx` (keep model.onnx.data beside it)",
        )
    if OnnxSource.claims(path):
        return OnnxSource(path)
    if SavedModelSource.claims(path):
        detect_format(path)  # a folder without a SavedModel in it: say so now
        return SavedModelSource(path)
    return KerasSource(path, detect_format(path))  # its first bytes decide; anything else is refused there


def save_from_memory(model: object, folder: Path) -> Path:
    """A model in memory (an ``onnx.ModelProto``, a Keras model) saved in ``folder`` as its source
    writes such a file, for the steps that read a path (``lamb.api``); InputError for anything else."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in (_onnx, _keras):
        path = source.save_from_memory(model, folder)
        if path is not None:
            return path
    raise InputError(f"cannot convert a {type(model).__name__}",
                     "pass a path, a Keras model or an onnx.ModelProto (torch.onnx.export it first)")
