"""A SavedModel folder as a source (``model.export(DIR)``, ``tf.saved_model.save``).

Read by tf_keras when the folder carries Keras metadata (layers, so preprocessing evidence and a
parameter count), else through its ``serving_default`` signature (``lamb.source.tf_load``).
"""

from __future__ import annotations

from pathlib import Path

from lamb import manifest as mf
from lamb.source.keras import load_keras_model
from lamb.source.tf_load import LoadedModel

GRAPH_FILES = ("saved_model.pb", "saved_model.pbtxt")


class SavedModelSource:
    """A SavedModel folder (``lamb.source.base.Source``)."""

    title = "SavedModel"
    readers: tuple[str, ...] = ("tensorflow", "keras", "tf-keras")  # the distributions whose versions the manifest records
    kind = "savedmodel"

    def __init__(self, path: Path):
        self.path = Path(path)

    @staticmethod
    def claims(path: Path) -> bool:
        return path.is_dir()  # a folder that holds no SavedModel is refused, saying so, when it loads

    @property
    def stem(self) -> str:
        return self.path.name  # a folder's name is its stem: model.v2/ converts to model.v2.<format suffix>

    def files(self) -> list[Path]:
        return sorted(p for p in self.path.rglob("*") if p.is_file())

    def converts_to(self, fmt: str) -> bool:
        return True  # every model format's converter starts from a SavedModel

    def sha256(self) -> str | None:
        """The graph's hash (``saved_model.pb``): the variables beside it are too many files to name one."""
        pb = self.path / GRAPH_FILES[0]
        return mf.sha256_file(pb) if pb.is_file() else None

    def load(self, *, allow_unsafe_lambda: bool = False) -> LoadedModel:
        return load_keras_model(self.path, allow_unsafe_lambda=allow_unsafe_lambda)
