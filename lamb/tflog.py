"""Keep TensorFlow's log noise out of normal output; ``--verbose`` lets it through.

TensorFlow reads TF_CPP_MIN_LOG_LEVEL once, when its C++ core loads, so this must run before the
first ``import tensorflow`` (the CLI calls ``configure`` before any command body runs). The
converter's MLIR diagnostics are written straight to file descriptor 2 by C++ code, which no
Python logging setting reaches: ``capture_fd2`` redirects the descriptor itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

_verbose = False


def is_verbose() -> bool:
    """Whether the last ``configure`` let TensorFlow's logs through (``--verbose``)."""
    return _verbose


def configure(verbose: bool) -> None:
    global _verbose
    _verbose = verbose
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # errors only from the C++ core
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # no "oneDNN custom operations" banner
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        import warnings

        warnings.filterwarnings("ignore", module=r"(keras|tf_keras|tensorflow|absl|h5py)(\.|$)")


def quiet_tensorflow():
    """Import TensorFlow with its Python-side loggers turned down; returns the module."""
    import tensorflow as tf

    if not _verbose:
        tf.get_logger().setLevel("ERROR")
        try:
            import absl.logging

            absl.logging.set_verbosity(absl.logging.ERROR)
        except ImportError:  # absl always ships with TF, but nothing here needs it to
            pass
    return tf


@contextlib.contextmanager
def capture_fd2() -> Iterator[list[str]]:
    """Capture what C++ code writes to stderr; yields a list that holds the text afterwards.

    With ``--verbose`` the text is also replayed to the real stderr.
    """
    captured: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", errors="replace")
            captured.append(text)
            if _verbose and text:
                sys.stderr.write(text)
