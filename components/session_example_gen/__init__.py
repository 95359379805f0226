"""Session ExampleGen: engagement logs -> sessions -> (item, label, timestamp) training pairs.

`sessions_lib` holds the algorithm (no TFX import); `component` the TFX component, imported on first use so
that importing the settings does not pull in TensorFlow.
"""

from typing import Any

from components.session_example_gen.input_files import fingerprint_inputs
from components.session_example_gen.session_settings import EventSource, SessionSettings

__all__ = ["EventSource", "Quarantine", "SessionExampleGen", "SessionSettings", "fingerprint_inputs"]


def __getattr__(name: str) -> Any:
    if name in ("SessionExampleGen", "Quarantine"):
        from components.session_example_gen import component

        return getattr(component, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
