"""What a classifier's output is (its head, recorded by ``lamb convert`` as ``head``), and the scores answered from it.

- ``softmax``, ``logits``: one score per class; answered as they are, ``{label: score}``.
- ``binary-logit``: one value, the positive class's logit (PyTorch's ``BCEWithLogitsLoss`` models);
  ``p = sigmoid(logit)``.
- ``binary-probability``: one value, the positive class's probability (a final sigmoid, Keras's
  ``Dense(1, activation="sigmoid")``).

A binary model answers both classes, ``{negative: 1 - p, positive: p}``, so its answer reads like a
two-class softmax's and its top-1 is the 0.5 threshold. A record without a head (written before
heads were recorded) answers as ``logits`` does.
"""

from __future__ import annotations

import numpy as np

SOFTMAX, LOGITS, BINARY_LOGIT, BINARY_PROBABILITY = "softmax", "logits", "binary-logit", "binary-probability"
HEADS = (SOFTMAX, LOGITS, BINARY_LOGIT, BINARY_PROBABILITY)
BINARY = (BINARY_LOGIT, BINARY_PROBABILITY)


def positive_probability(values, head):
    """p, the positive class's probability, from a binary head's raw values (any shape)."""
    x = np.asarray(values, dtype=np.float64)
    if head == BINARY_LOGIT:
        return np.exp(-np.logaddexp(0.0, -x))  # sigmoid without overflow for large |x|
    return np.clip(x, 0.0, 1.0)


def class_scores(rows, head):
    """A batch of raw outputs, ``(N, ...)`` -> the scores answered per class, ``(N, classes)``:
    a binary head's one value becomes ``(1 - p, p)``; any other head's scores stay as they are."""
    rows = np.asarray(rows)
    if head not in BINARY:
        return rows.reshape(len(rows), -1)
    p = positive_probability(rows.reshape(len(rows), -1)[:, 0], head)
    return np.stack([1.0 - p, p], axis=1).astype(np.float32)
