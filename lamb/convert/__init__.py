"""Load Keras models and convert them for a runtime library (lamb.runtime_lib).

``convert_model`` is the ``lamb convert`` step; ``load_keras_model`` is shared with ``lamb verify``,
which runs the source model through the same loader to compare it with the converted model.
"""

from lamb.convert.core import convert_model, default_output
from lamb.convert.load import LoadedModel, load_keras_model
from lamb.convert.report import ConversionResult

__all__ = ["ConversionResult", "LoadedModel", "convert_model", "default_output", "load_keras_model"]
