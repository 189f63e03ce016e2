"""The loaded model as one serving function, and as a SavedModel holding it: what every converter starts from.

The function takes positional inputs named like the model's and returns a dict of named outputs,
so the converted model's signature carries the model's own input and output names, which the
manifest records and ``lamb verify`` pairs with the source model's. LiteRT's converter takes the
function (or, for Keras 3, the SavedModel); tf2onnx reads the SavedModel.
"""

from __future__ import annotations

import contextlib
import inspect
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lamb import files
from lamb.source.base import InputSpec, clean_name
from lamb.source.tf_load import LoadedModel

SIGNATURE_KEY = "serving_default"


def serving_function(loaded: LoadedModel, inputs: list[InputSpec]) -> tuple[Callable[..., Any], list[Any], list[str]]:
    """(the model as ``serve(*inputs) -> {name: tensor}``, its input signature, the output names).

    The output names list fills in when the function is first traced.
    """
    import tensorflow as tf

    signature = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in inputs]
    model = loaded.model
    if loaded.is_keras:
        declared = list(getattr(model, "output_names", None) or [])

        def call(args):
            return model(args[0] if len(args) == 1 else list(args), training=False)
    else:
        sig = loaded.signature
        _, kwargs = sig.structured_input_signature
        keys = sorted(kwargs)
        declared = sorted(sig.structured_outputs)

        def call(args):
            return sig(**dict(zip(keys, args)))

    names: list[str] = []
    input_names = {s.name for s in inputs}

    def named(out) -> dict[str, Any]:
        if isinstance(out, dict):
            items = list(out.items())
        else:
            tensors = list(out) if isinstance(out, (list, tuple)) else [out]
            keys_ = declared if len(declared) == len(tensors) else [f"output_{i}" for i in range(len(tensors))]
            items = list(zip(keys_, tensors))
        result: dict[str, Any] = {}
        for i, (raw_key, tensor) in enumerate(items):
            key = clean_name(raw_key, f"output_{i}")
            if key in result or key in input_names:
                key = f"{key}_{i}"
            result[key] = tensor
        names[:] = list(result)
        return result

    def serve(*args):
        return named(call(args))

    return serve, signature, names


@contextlib.contextmanager
def saved_model(loaded: LoadedModel, inputs: list[InputSpec]) -> Iterator[tuple[str, list[str]]]:
    """A temporary SavedModel whose ``serving_default`` is ``serving_function``: (its folder, output names).

    Keras 3 models go through ``keras.export.ExportArchive``, as Keras's own ``model.export`` does:
    handed to ``tf.saved_model.save`` (or to LiteRT's converter as a concrete function) as the
    trackable object, a Keras 3 model does not carry its variables into the graph (LiteRT's int8
    calibration then fails with READ_VARIABLE). tf_keras models and loaded SavedModels are real TF
    trackables and save directly.
    """
    import tensorflow as tf

    serve, signature, names = serving_function(loaded, inputs)
    with files.scratch("lamb-export-") as folder:  # noted before a stop can land (lamb.files.scratch)
        export_dir = str(folder)
        try:
            if loaded.loader == "keras":
                import keras

                archive = keras.export.ExportArchive()
                archive.track(loaded.model)
                archive.add_endpoint(SIGNATURE_KEY, serve, signature)
                if "verbose" in inspect.signature(archive.write_out).parameters:
                    archive.write_out(export_dir, verbose=False)
                else:  # Keras < 3.5 always prints the endpoints (one line per variable) to stdout
                    with contextlib.redirect_stdout(io.StringIO()):
                        archive.write_out(export_dir)
            else:
                concrete = tf.function(serve, input_signature=signature, autograph=False).get_concrete_function()
                tf.saved_model.save(loaded.model, export_dir, signatures={SIGNATURE_KEY: concrete})
        except Exception as exc:  # the temporary folder full: TensorFlow says so in a ResourceExhaustedError
            refused = files.write_refused(exc, Path(export_dir))
            if refused is None:
                raise
            raise refused from exc
        yield export_dir, names
