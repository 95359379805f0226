"""TF Serving's model config file (`--model_config_file`, a text-format ModelServerConfig), as `pin2vec serve`
reads it: per model a version policy and version labels, for pinning and canaries the way TF Serving does.

    model_config_list {
      config {
        name: "related"
        base_path: "/models/related"     # read for compatibility; models always come from --model-base
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1796331895 versions: 1796418301 } }
        version_labels { key: "stable" value: 1796331895 }
        version_labels { key: "canary" value: 1796418301 }
      }
    }

A version number is a push (every model of one push shares it), so an entry for `related`, the default model,
applies to every model without an entry of its own. A model without any entry keeps the server's default
(the newest `--keep-versions`).
"""

from __future__ import annotations

import dataclasses

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """Which versions of a model stay loaded: the newest `num` ("latest"), the listed ones ("specific"), or
    every version ("all")."""

    kind: str
    num: int = 0
    versions: frozenset[int] = frozenset()

    def select(self, versions: list[int]) -> list[int]:
        """The versions to serve among those on disk, newest first."""
        newest_first = sorted(versions, reverse=True)
        if self.kind == "specific":
            return [v for v in newest_first if v in self.versions]
        if self.kind == "all":
            return newest_first
        return newest_first[: self.num]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    policy: VersionPolicy | None  # None: the server's default
    labels: dict[str, int]


def parse_model_config(text: str, where: str = "model config") -> dict[str, ModelEntry]:
    """{model name: entry}; ValueError naming `where` and what is wrong."""
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ValueError(f"{where} is not a TF Serving ModelServerConfig text proto: {error}") from error
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(
            f"{where} must hold a model_config_list (pin2vec serve reads no custom_model_config)"
        )
    entries: dict[str, ModelEntry] = {}
    for model in config.model_config_list.config:
        if not model.name:
            raise ValueError(f"{where}: a config entry has no name")
        if model.name in entries:
            raise ValueError(f"{where}: model {model.name!r} appears twice")
        choice = model.model_version_policy.WhichOneof("policy_choice")
        if choice == "specific":
            versions = frozenset(model.model_version_policy.specific.versions)
            if not versions:
                raise ValueError(f"{where}: model {model.name!r} has a specific policy with no versions")
            policy: VersionPolicy | None = VersionPolicy("specific", versions=versions)
        elif choice == "latest":  # TF Serving's default num_versions is 1
            policy = VersionPolicy("latest", num=max(1, model.model_version_policy.latest.num_versions))
        elif choice == "all":
            policy = VersionPolicy("all")
        else:
            policy = None
        labels = dict(model.version_labels)
        if policy is not None and policy.kind == "specific":
            stray = {label: v for label, v in labels.items() if v not in policy.versions}
            if stray:
                raise ValueError(
                    f"{where}: model {model.name!r} labels versions outside its specific policy: {stray}"
                )
        entries[model.name] = ModelEntry(policy, labels)
    return entries
