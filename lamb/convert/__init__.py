"""Convert a source model (``lamb.source``: Keras, SavedModel, ONNX) for a runtime library (``lamb.runtime_lib``).

``convert_model`` is the ``lamb convert`` step; ``lamb verify`` and ``lamb compare`` open and load
the same source through ``lamb.source``.
"""

from lamb.convert.core import convert_model, default_output
from lamb.convert.report import ConversionResult

__all__ = ["ConversionResult", "convert_model", "default_output"]
