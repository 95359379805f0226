"""Start-up lines no pin2vec user can act on, kept out of what the CLI prints: TensorFlow's CUDA plugin
registration on a machine without a GPU (C++ logs at import, written to file descriptor 2) and TFMA's notes
on optional packages it looked for. Everything else printed while TensorFlow loads is passed on."""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

TENSORFLOW_NOISE = re.compile(
    r"Unable to register cu(FFT|DNN|BLAS) factory|TF-TRT Warning|Could not find cuda drivers"
    r"|oneDNN custom operations|cpu_feature_guard|rebuild TensorFlow with the appropriate compiler flags"
)
OPTIONAL_PACKAGE_NOTE = re.compile(r"^(tensorflow_\w+|struct2tensor) is not available")


def is_noise(line: str) -> bool:
    return bool(TENSORFLOW_NOISE.search(line) or OPTIONAL_PACKAGE_NOTE.match(line))


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines captured and only the ones that are not noise shown."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", errors="replace").splitlines(keepends=True):
                if not is_noise(line):
                    sys.stderr.write(line)


class NoOptionalPackageNotes(logging.Filter):
    """Drops TFMA's "tensorflow_text is not available" kind of records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not OPTIONAL_PACKAGE_NOTE.match(record.getMessage())
