"""Test-wide environment: Keras 2 through tf-keras (TFX 1.16) and quiet TensorFlow."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
