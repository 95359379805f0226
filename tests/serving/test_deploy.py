"""deploy/: the Kubernetes manifest and the Dockerfile start `pin2vec serve` with arguments the CLI accepts,
and the ports and model paths agree with each other (Docker is not needed: nothing is built or pulled)."""

from __future__ import annotations

import json
import os
import re

import yaml

from pipeline.cli import build_parser

DEPLOY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "deploy")


def _entrypoint() -> list[str]:
    with open(os.path.join(DEPLOY, "Dockerfile"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"^ENTRYPOINT (\[.*?\])$", text.replace("\\\n", ""), re.MULTILINE | re.DOTALL)
    assert match, "Dockerfile has no exec-form ENTRYPOINT"
    return json.loads(match.group(1))


def test_dockerfile_and_manifest_start_a_valid_serve_command():
    entrypoint = _entrypoint()
    assert entrypoint[0].endswith("/pin2vec") and entrypoint[1] == "serve"
    with open(os.path.join(DEPLOY, "k8s", "pin2vec-serving.yaml"), encoding="utf-8") as f:
        documents = [doc for doc in yaml.safe_load_all(f) if doc]
    related = next(
        d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "pin2vec-related"
    )
    container = related["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(entrypoint[1:] + container["args"])
    assert (args.command, args.model_base, args.host) == ("serve", "/models", "0.0.0.0")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": args.grpc_port, "http": args.rest_port}
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/models"}
    embedding = next(
        d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "pin2vec-embedding"
    )
    tf_serving = embedding["spec"]["template"]["spec"]["containers"][0]
    assert tf_serving["image"].startswith("tensorflow/serving:")
    assert "--model_base_path=/models/embedding" in tf_serving["args"]


def test_the_image_holds_every_package_and_its_python_runs_the_pipeline_steps():
    """The image installs the project (`uv pip install .`): every package pyproject.toml lists must be copied
    in first. Kubeflow replaces the entrypoint with `python -m tfx...`: `python` must be the venv's."""
    import tomllib

    root = os.path.dirname(DEPLOY)
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        packages = {
            p.rstrip("*") for p in tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]
        }
    with open(os.path.join(DEPLOY, "Dockerfile"), encoding="utf-8") as f:
        text = f.read()
    copied = set(re.findall(r"^COPY (\w+) \1$", text, re.MULTILINE))
    assert packages <= copied, f"pyproject packages the image does not copy: {sorted(packages - copied)}"
    assert re.search(r"^ENV PATH=/app/\.venv/bin:\$PATH", text, re.MULTILINE)
