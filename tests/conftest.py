"""Shared fixtures. Small real models, real files under tmp dirs; no mocked TensorFlow.

Sections are owned by area (convert / verify / package / invoke); add fixtures to your own section.
"""

from __future__ import annotations

import os

# Before anything imports TensorFlow: keep its C++ log noise out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402

# -- shared ------------------------------------------------------------------------------------
