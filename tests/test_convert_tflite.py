"""lamb.convert.tflite: reading the TFLite converter's own words (no TensorFlow needed here)."""

from __future__ import annotations

from lamb.convert.tflite import _CUSTOM_OPS, _SELECT_OPS, _converter_summary, _ops_from


def test_converter_log_parsing_names_ops_and_drops_the_mlir_dump():
    """The converter's own words (TF 2.21), trimmed: what lamb reads its op names from."""
    text = (
        "Could not translate MLIR to FlatBuffer./tmp/m.py:16:1: error: 'tf.MatrixInverse' op is neither "
        "a custom op nor a flex op\n<unknown>:0: error: failed while converting: 'main': \n"
        "Some ops are not supported by the native TFLite runtime, you can enable TF kernels fallback using "
        "TF Select. See instructions: https://www.tensorflow.org/lite/guide/ops_select \n"
        "TF Select ops: MatrixInverse, Svd\nDetails:\n\ttf.MatrixInverse(tensor<?x4x4xf32>) -> (tensor<?x4x4xf32>)\n"
        "Some ops in the model are custom ops, See instructions to implement custom ops: "
        "https://www.tensorflow.org/lite/guide/ops_custom \nCustom ops: MyOp\n"
        '"func.func"() <{arg_attrs = [...]}> ({\n'
    )
    assert _ops_from(_SELECT_OPS, text) == ["MatrixInverse", "Svd"]
    assert _ops_from(_CUSTOM_OPS, text) == ["MyOp"]
    summary = _converter_summary(text)
    assert summary == "'tf.MatrixInverse' op is neither a custom op nor a flex op"
