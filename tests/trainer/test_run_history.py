import json

import numpy as np

from trainer_module.run import HISTORY_FILE, write_history


def test_history_is_plain_json_per_epoch(tmp_path):
    history = {"loss": [np.float32(2.5), 1.25], "val_loss": [np.float64(3.0), 2.0]}
    path = write_history(history, str(tmp_path))
    assert path.endswith(HISTORY_FILE)
    with open(path) as f:
        assert json.load(f) == {"loss": [2.5, 1.25], "val_loss": [3.0, 2.0]}
