"""TensorFlow's start-up noise stays out of what the CLI prints; anything else printed then is kept."""

import subprocess
import sys

from pipeline.quiet_start import is_noise

REPO = __file__.rsplit("/tests/", 1)[0]


def test_cuda_registration_and_optional_package_notes_are_noise_and_errors_are_not():
    cuda = "2026-12-07 12:48:00.847605: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:479] "
    assert is_noise(
        cuda + "Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT"
    )
    assert is_noise("tensorflow_text is not available: No module named 'tensorflow_text'")
    assert is_noise("struct2tensor is not available.")
    assert not is_noise("2026-12-07 12:48:00: E tensorflow/core/framework/op_kernel.cc] OOM when allocating")
    assert not is_noise("the input tensorflow_text is not available in your log?")  # not at the start


def test_importing_tensorflow_through_the_cli_prints_none_of_it():
    probe = (
        "import sys; from pipeline.quiet_start import import_tensorflow_quietly; "
        "import_tensorflow_quietly(); import tensorflow as tf; print('loaded', file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "loaded" in done.stderr  # what is printed after the import still reaches the user
    assert "Unable to register" not in done.stderr and "cuda_fft" not in done.stderr, done.stderr
