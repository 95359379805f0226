"""`pin2vec rollback`: serve an earlier pushed version, or the newest again, without deleting anything.

A rollback pins the serving directory to one committed version (formats/push_records.py): `pin2vec serve`
follows at its next poll (the pinned version is loaded, then swapped in, so no request fails), and
`pin2vec related` and the exports answer from it too. Pushes go on while pinned; they serve once released.
"""

from __future__ import annotations

import os
import time

from formats import push_records, serving_layout


def rollback(serving_dir: str, to: int | None = None, previous: bool = False, release: bool = False) -> str:
    """Pins serving to version `to`, or to the committed version before the one served now (`previous`), or
    releases the pin (`release`); returns what happened, for people. Raises ValueError with what to do."""
    if sum((to is not None, previous, release)) != 1:
        raise ValueError("give exactly one of --to VERSION, --previous or --release")
    if not os.path.isdir(serving_dir):
        raise ValueError(
            f"{serving_dir} is not a serving directory: run `pin2vec run` first, or check the path"
        )
    serving_layout.adopt_legacy_versions(serving_dir)
    versions = sorted(push_records.committed(serving_dir))
    if not versions:
        raise ValueError(f"nothing was pushed to {serving_dir}: no version to roll back to")
    pinned = push_records.pinned_version(serving_dir)
    current = pinned if pinned is not None else versions[-1]
    note = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "from": current}
    if release:
        push_records.write_pin(serving_dir, None, {**note, "action": "release"})
        return f"serving follows the newest pushed version again: {versions[-1]} (was pinned to {current})"
    if previous:
        older = [v for v in versions if v < current]
        if not older:
            raise ValueError(
                f"version {current} is the oldest pushed version in {serving_dir}: nothing before it"
            )
        to = older[-1]
    if to not in versions:
        raise ValueError(f"version {to} was never committed in {serving_dir}; pushed versions: {versions}")
    _check_intact(serving_dir, to)
    push_records.write_pin(serving_dir, to, {**note, "action": "rollback"})
    return (
        f"serving now answers from version {to} (was {current}); a running `pin2vec serve` follows within "
        "one poll. Newer versions are kept; `pin2vec rollback --release` serves the newest again."
    )


def _check_intact(serving_dir: str, version: int) -> None:
    """A rollback target whose files were damaged would be refused by every reader: say so now."""
    for model, digest in push_records.committed(serving_dir)[version].get("models", {}).items():
        directory = os.path.join(serving_dir, model, str(version))
        if digest is None or not os.path.isdir(directory):
            continue  # recorded before manifests, or a model this version did not publish
        try:
            push_records.verify_manifest(directory, digest)
        except push_records.CorruptVersionError as error:
            raise ValueError(f"version {version} cannot serve: {error}") from error
