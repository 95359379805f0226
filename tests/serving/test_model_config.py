"""TF Serving's model config file on the real server: version policies, labels over REST and gRPC, and a bad
config that leaves the last good one in force."""

import json
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import requests
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from formats import index_files, serving_layout
from serving.model_config import VersionPolicy, parse_model_config
from serving.tensors import array_to_proto
from tests.serving.conftest import ITEM_IDS, running_server, wait_until


def _config(versions, labels):
    policy = " ".join(f"versions: {v}" for v in versions)
    entries = " ".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
    return (
        'model_config_list { config { name: "related" base_path: "/ignored" model_platform: "tensorflow" '
        f"model_version_policy {{ specific {{ {policy} }} }} {entries} }} }}"
    )


def test_parsing_reads_policies_and_labels_and_names_what_is_wrong():
    entries = parse_model_config(_config([3, 4], {"stable": 3, "canary": 4}))
    assert entries["related"].policy == VersionPolicy("specific", versions=frozenset({3, 4}))
    assert entries["related"].labels == {"stable": 3, "canary": 4}
    latest = parse_model_config(
        'model_config_list { config { name: "pin2vec" model_version_policy { latest {} } } }'
    )
    assert latest["pin2vec"].policy.select([1, 5, 3]) == [5]  # TF Serving's default: the newest one
    every = parse_model_config(
        'model_config_list { config { name: "blend" model_version_policy { all {} } } }'
    )
    assert every["blend"].policy.select([1, 5, 3]) == [5, 3, 1]
    assert parse_model_config('model_config_list { config { name: "board" } }')["board"].policy is None
    bad = {
        "model_config_list { config { nam": "not a TF Serving ModelServerConfig",
        _config([3], {"canary": 4}): "labels versions outside its specific policy",
        'model_config_list { config { name: "a" } config { name: "a" } }': "appears twice",
        'model_config_list { config { model_platform: "tensorflow" } }': "has no name",
    }
    for text, message in bad.items():
        with pytest.raises(ValueError, match=message):
            parse_model_config(text, "models.config")


def _grpc_version(server, label):
    with grpc.insecure_channel(server.grpc_target) as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "related"
        request.model_spec.version_label = label
        ids = np.array([index_files.encode_item_id(ITEM_IDS[4])], dtype=object)
        request.inputs["item_ids"].CopyFrom(array_to_proto(ids))
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
        return response.model_spec.version.value


def test_labels_are_served_over_rest_and_grpc_and_a_bad_config_keeps_the_last_good_one(artifacts, tmp_path):
    base = tmp_path / "serving"
    similar = serving_layout.PIN2VEC_SIMILAR_MODEL
    v1, v2, v3 = (
        serving_layout.publish_version(str(base), {similar: index}, {"index": tag}).version
        for tag, index in (("a", artifacts.index_a), ("b", artifacts.index_b), ("c", artifacts.index_a))
    )
    config = tmp_path / "models.config"
    config.write_text(_config([v1, v2], {"stable": v1, "canary": v2}))
    body = json.dumps({"instances": [ITEM_IDS[4]]})

    def answer(path):
        response = requests.post(f"{server.rest}/v1/models/related{path}:predict", data=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["predictions"][0]["related_ids"]

    with running_server(str(base), model_config_file=str(config)) as server:
        status = requests.get(f"{server.rest}/v1/models/{similar}", timeout=10).json()
        assert sorted(int(s["version"]) for s in status["model_version_status"]) == [v1, v2]  # not v3
        assert answer("/labels/stable") == answer(f"/versions/{v1}") != answer("/labels/canary")
        assert answer("") == answer(f"/versions/{v2}")  # latest among the configured versions
        assert _grpc_version(server, "stable") == v1 and _grpc_version(server, "canary") == v2
        missing = requests.post(f"{server.rest}/v1/models/related/labels/beta:predict", data=body, timeout=10)
        assert missing.status_code == 404 and "no version label 'beta'" in missing.json()["error"]
        config.write_text(_config([v1, v2], {"stable": v1}) + " garbage")  # a bad edit
        time.sleep(0.5)  # five polls: read, refused, the last good config stays (canary included)
        assert _grpc_version(server, "stable") == v1 and _grpc_version(server, "canary") == v2
        # Promote the canary: stable now answers from v2, and v1 is unloaded.
        config.write_text(_config([v2, v3], {"stable": v2, "canary": v3}))
        wait_until(lambda: _grpc_version(server, "stable") == v2, what="the new config")
        assert _grpc_version(server, "canary") == v3


def test_serve_refuses_a_bad_model_config_at_start_naming_the_flag(tmp_path):
    base = tmp_path / "serving"
    base.mkdir()
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "related" } } garbage')
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "serve", "--model-base", str(base),
         "--model-config-file", str(config), "--rest-port", "0", "--grpc-port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"--model-config-file {config}" in done.stderr and "ModelServerConfig" in done.stderr
