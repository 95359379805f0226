"""pipeline/kubeflow_local.py on a hand-made two-step spec: the DAG order, the ExecutorInput Kubeflow would
pass (parsed by TFX's own entrypoint helpers) and the command with its placeholder filled."""

import json

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.kubeflow_local import container_command, executor_input, is_resolver, task_order

EXAMPLES = {"instanceSchema": "title: tfx.Examples\ntype: object\n"}
MODEL = {"instanceSchema": "title: tfx.Model\ntype: object\n"}
ENTRYPOINT = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]


def _container(executor_class):
    args = ["--executor_class_path", executor_class, "--json_serialized_invocation_args", "{{$}}"]
    return {"container": {"image": "x:1", "command": ENTRYPOINT, "args": [*args, "--runner=DirectRunner"]}}


def _spec():
    return {
        "pipelineSpec": {
            "components": {
                "Gen": {
                    "executorLabel": "Gen_executor",
                    "inputDefinitions": {"parameters": {"path": {"type": "STRING"}}},
                    "outputDefinitions": {"artifacts": {"examples": {"artifactType": EXAMPLES}}},
                },
                "Train": {
                    "executorLabel": "Train_executor",
                    "inputDefinitions": {
                        "artifacts": {
                            "examples": {"artifactType": EXAMPLES},
                            "base_model": {"artifactType": MODEL},
                        },
                        "parameters": {"epochs": {"type": "INT"}},
                    },
                    "outputDefinitions": {"artifacts": {"model": {"artifactType": MODEL}}},
                },
                "Resolve": {
                    "executorLabel": "Resolve_executor",
                    "outputDefinitions": {"artifacts": {"model": {"artifactType": MODEL}}},
                },
            },
            "deploymentSpec": {
                "executors": {
                    "Gen_executor": _container("gen.Executor"),
                    "Train_executor": _container("train.Executor"),
                    "Resolve_executor": {"resolver": {"outputArtifactQueries": {}}},
                }
            },
            "root": {
                "dag": {
                    "tasks": {
                        "Train": {
                            "componentRef": {"name": "Train"},
                            "dependentTasks": ["Gen"],
                            "inputs": {
                                "artifacts": {
                                    "examples": {
                                        "taskOutputArtifact": {
                                            "outputArtifactKey": "examples",
                                            "producerTask": "Gen",
                                        }
                                    },
                                    "base_model": {
                                        "taskOutputArtifact": {
                                            "outputArtifactKey": "model",
                                            "producerTask": "Resolve",
                                        }
                                    },
                                },
                                "parameters": {
                                    "epochs": {"runtimeValue": {"constantValue": {"intValue": "3"}}}
                                },
                            },
                        },
                        "Gen": {
                            "componentRef": {"name": "Gen"},
                            "inputs": {
                                "parameters": {
                                    "path": {"runtimeValue": {"constantValue": {"stringValue": "/d"}}}
                                }
                            },
                        },
                        "Resolve": {"componentRef": {"name": "Resolve"}},
                    }
                }
            },
        }
    }


def test_tasks_follow_what_they_depend_on_and_a_cycle_is_refused():
    spec = _spec()
    assert task_order(spec) == ["Gen", "Resolve", "Train"]
    assert is_resolver(spec, "Resolve") and not is_resolver(spec, "Train")
    spec["pipelineSpec"]["root"]["dag"]["tasks"]["Gen"]["dependentTasks"] = ["Train"]
    with pytest.raises(ValueError, match="cycle"):
        task_order(spec)


def test_executor_input_carries_the_producers_artifacts_the_parameters_and_the_output_uris(tmp_path):
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint

    spec = _spec()
    produced = {
        "Gen": {
            "examples": [{"name": "a/Gen-examples", "uri": "/w/Gen/examples", "metadata": {"span": 0.0}}]
        },
        "Resolve": {"model": []},  # a first run: nothing blessed yet
    }
    value = executor_input(spec, "Train", produced, str(tmp_path / "Train"))
    parsed = json_format.ParseDict(value, pipeline_spec_pb2.ExecutorInput())
    inputs = entrypoint.parse_raw_artifact_dict(parsed.inputs.artifacts)
    assert [a.uri for a in inputs["examples"]] == ["/w/Gen/examples"]
    assert type(inputs["examples"][0]).__name__ == "Examples" and inputs["examples"][0].span == 0
    assert inputs["base_model"] == []
    outputs = entrypoint.parse_raw_artifact_dict(parsed.outputs.artifacts)
    assert [a.uri for a in outputs["model"]] == [str(tmp_path / "Train" / "model")]
    assert parsed.outputs.output_file == str(tmp_path / "Train" / "executor_output.json")
    properties = entrypoint.parse_execution_properties(
        parsed.inputs.parameter_values, parsed.inputs.parameters
    )
    assert properties == {"epochs": 3}


def test_the_command_is_the_specs_with_the_executor_input_in_place_of_its_placeholder():
    spec = _spec()
    invocation = {"inputs": {}, "outputs": {"outputFile": "/w/Gen/executor_output.json"}}
    command = container_command(spec, "Gen", invocation, python="/venv/bin/python")
    assert command[:3] == ["/venv/bin/python", *ENTRYPOINT[1:]]
    assert command[3:6] == ["--executor_class_path", "gen.Executor", "--json_serialized_invocation_args"]
    assert json.loads(command[6]) == invocation
    assert command[7:] == ["--runner=DirectRunner"]
    with pytest.raises(ValueError, match="runs no container"):
        container_command(spec, "Resolve", invocation)
    spec["pipelineSpec"]["deploymentSpec"]["executors"]["Gen_executor"]["container"]["args"].append(
        "{{$.inputs.parameters['path']}}"
    )
    with pytest.raises(ValueError, match="placeholder not supported"):
        container_command(spec, "Gen", invocation)


def test_a_work_directory_with_a_tasks_outputs_is_refused(tmp_path):
    """A pod starts with empty output URIs; the entrypoint takes an old executor output for a driver's."""
    from pipeline.kubeflow_local import run_spec

    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(_spec()))
    (tmp_path / "work" / "Train").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"already holds outputs of \['Train'\]"):
        run_spec(str(spec_path), str(tmp_path / "work"))
