"""Which versions of which models are served: a polled base directory, loads off the request path, swaps.

`<base>/<model>/<version>/`, as TF Serving lays it out. Each poll, per model, the newest `keep_versions`
committed, complete versions are served; a version whose files differ from its manifest is refused
(formats/push_records.py). A version directory named with a dot (a push in progress) or lacking a file its
loader requires is not loaded (it is looked at again next poll); one whose load fails is refused, with the
reason logged and kept in its status, and the versions already loaded keep serving. A new version is loaded
on the poller thread and swapped in with one reference assignment, so requests are never paused; a version
swapped out is closed only when the last request holding it has finished.

An alias is a model name that answers from another model, chosen again at each poll (after the loads): the
`related` model a client calls by default answers from the source the last push chose. An alias may have
fallback models: a request then holds the alias's version and, of each fallback, its newest loaded version
not newer than that one, and `compose` makes them one servable (serving/fallback_model.py: cold start).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

from formats import push_records, serving_layout
from serving.errors import Code, ServingError
from serving.model_config import ModelEntry, VersionPolicy, parse_model_config
from serving.servable import ModelLoader, Servable

log = logging.getLogger("pin2vec.serving")
_NO_ENTRY = ModelEntry(None, {})


def version_dirs(model_base: str) -> dict[int, str]:
    """{version: path} of the integer-named directories (ASCII digits only) under `model_base` whose version
    is committed (push_records: a push is visible whole or not at all)."""
    serving_dir, model = os.path.split(os.path.abspath(model_base))
    paths = {
        version: os.path.join(model_base, str(version))
        for version in serving_layout.existing_versions(model_base)
        if push_records.manifest_of(serving_dir, model, version)[0]
    }
    return {version: path for version, path in paths.items() if os.path.isdir(path)}


@contextlib.contextmanager
def _switch_interval(seconds: float | None):
    """Python's GIL switch interval set to `seconds` (None: unchanged) for the block, restored after."""
    if seconds is None:
        yield
        return
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # TF Serving's ManagerState names: AVAILABLE or END (refused or unloaded)
    error: str = ""


class _Entry:
    """A loaded servable and how many requests are using it right now."""

    def __init__(self, servable: Servable):
        self.servable = servable
        self.in_flight = 0
        self.retired = False


@dataclasses.dataclass(frozen=True)
class Fallbacks:
    """An alias's fallback models, in order, and how a request's servables become one."""

    models: tuple[str, ...]
    compose: Callable[[Servable, list[Servable]], Servable]


class Lease:
    """A servable held for the duration of one request; release it when done (or use `with`)."""

    def __init__(self, registry: ModelRegistry, entry: _Entry, extra: Sequence[_Entry] = (), compose=None):
        self._registry = registry
        self._entries = [entry, *extra]
        self.servable = compose(entry.servable, [e.servable for e in extra]) if extra else entry.servable

    def release(self) -> None:
        entries, self._entries = self._entries, []
        for entry in entries:
            self._registry._release(entry)

    def __enter__(self) -> Servable:
        return self.servable

    def __exit__(self, *exc) -> None:
        self.release()


class ModelRegistry:
    """Models by name, each with its loaded versions; `poll()` brings them in line with the disk."""

    def __init__(
        self,
        model_base: str,
        loaders: Sequence[ModelLoader],
        keep_versions: int = 2,
        loading_switch_interval_s: float | None = None,
        aliases: Mapping[str, Callable[[], str]] | None = None,
        model_config_file: str | None = None,
        fallbacks: Mapping[str, Fallbacks] | None = None,
    ):
        """`loading_switch_interval_s`: Python's GIL switch interval while a version loads (None: left as
        it is). A loader's Python code holds the GIL between switches, so every request served meanwhile
        waits up to one interval each time it needs the GIL; a shorter interval during loads keeps those
        waits out of the latency, at no cost the rest of the time.

        `aliases`: name -> a function giving the model that name answers from (called at each poll).
        `model_config_file`: TF Serving's model config (version policies and labels; model_config.py), read
        again at each poll when it changed; a bad one is logged and the last good one kept.
        `fallbacks`: alias -> the models answering what its target lacks (only models with a loader)."""
        if keep_versions < 1:
            raise ValueError(f"keep_versions must be >= 1; got {keep_versions}")
        names = [loader.name for loader in loaders]
        if len(set(names)) != len(names):
            raise ValueError(f"two loaders for one model name: {names}")
        clashes = sorted(set(names) & set(aliases or {}))
        if clashes:
            raise ValueError(f"an alias cannot share a loader's model name: {clashes}")
        self.model_base = model_base
        self.keep_versions = keep_versions
        self.loading_switch_interval_s = loading_switch_interval_s
        self._loaders = {loader.name: loader for loader in loaders}
        self._loaded: dict[str, dict[int, _Entry]] = {name: {} for name in self._loaders}
        self._refused: dict[str, dict[int, str]] = {name: {} for name in self._loaders}
        self._waiting: dict[str, set[int]] = {name: set() for name in self._loaders}
        self._aliases = dict(aliases or {})
        self._fallbacks = {
            alias: Fallbacks(tuple(m for m in f.models if m in self._loaders), f.compose)
            for alias, f in (fallbacks or {}).items()
        }
        self._alias_targets: dict[str, str] = {}
        self.model_config_file = model_config_file
        self._config: dict[str, ModelEntry] = {}
        self._config_stamp: tuple | None = None  # (mtime_ns, size) of the config last read
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def model_names(self) -> list[str]:
        return [*self._loaders, *self._aliases]

    def alias_target(self, name: str) -> str | None:
        """The model an alias answers from now (None: not an alias, or not resolved yet)."""
        with self._lock:
            return self._alias_targets.get(name)

    # -- requests ---------------------------------------------------------------------------------------

    def acquire(self, name: str, version: int | None = None) -> Lease:
        """The requested version (latest when None), held until the lease is released."""
        with self._lock:
            requested, name = name, self._resolve(name)
            versions = self._known(name)
            if version is None:
                if not versions:
                    via = f" (model '{requested}' answers from '{name}')" if requested != name else ""
                    raise ServingError(
                        Code.UNAVAILABLE if self._refused[name] or self._waiting[name] else Code.NOT_FOUND,
                        f"Servable not found for request: Latest({requested}): no version of '{name}' is "
                        f"loaded from {os.path.join(self.model_base, name)}{via}",
                    )
                entry = versions[max(versions)]
            else:
                entry = versions.get(version)
                if entry is None:
                    raise ServingError(
                        Code.NOT_FOUND,
                        f"Servable not found for request: Specific({requested}, {version}); loaded versions: "
                        f"{sorted(versions)}",
                    )
            extra = self._fallback_entries(requested, name, entry.servable.version)
            for held in (entry, *extra):
                held.in_flight += 1
        return Lease(self, entry, extra, self._fallbacks[requested].compose if extra else None)

    def _fallback_entries(self, alias: str, target: str, version: int) -> list[_Entry]:
        """Of each fallback model of `alias` but `target`, the newest loaded version <= `version`; call with
        the lock held."""
        fallbacks = self._fallbacks.get(alias)
        if fallbacks is None:
            return []
        entries = []
        for model in fallbacks.models:
            older = [v for v in self._loaded[model] if v <= version] if model != target else []
            if older:
                entries.append(self._loaded[model][max(older)])
        return entries

    def label_version(self, name: str, label: str) -> int:
        """The version `label` names for model `name` in the model config (for an alias: its own entry,
        else the entry of the model it answers from)."""
        with self._lock:
            target = self._resolve(name)
            labels = {**self._entry(target).labels, **self._entry(name).labels}
        if label not in labels:
            where = self.model_config_file or "no --model-config-file given"
            raise ServingError(
                Code.NOT_FOUND,
                f"model '{name}' has no version label '{label}' ({where}); labels: {sorted(labels)}",
            )
        return labels[label]

    def _entry(self, name: str) -> ModelEntry:
        """The model's config entry; else the entry of an alias (one push, one version number for every
        model); else none."""
        for candidate in (name, *self._aliases):
            if candidate in self._config:
                return self._config[candidate]
        return _NO_ENTRY

    def _resolve(self, name: str) -> str:
        """The model `name` answers from (itself unless an alias); call with the lock held."""
        if name not in self._aliases:
            return name
        target = self._alias_targets.get(name)
        if target is None:
            raise ServingError(Code.UNAVAILABLE, f"model '{name}' is an alias not resolved yet; try again")
        return target

    def _known(self, name: str) -> dict[int, _Entry]:
        if name not in self._loaders:
            raise ServingError(
                Code.NOT_FOUND, f"Servable not found for request: model '{name}'; models: {self.model_names}"
            )
        return self._loaded[name]

    def _release(self, entry: _Entry) -> None:
        with self._lock:
            entry.in_flight -= 1
            close = entry.retired and entry.in_flight == 0
        if close:
            self._close(entry)

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """Loaded and refused versions, newest first (one version when `version` is given)."""
        with self._lock:
            name = self._resolve(name)
            loaded = sorted(self._known(name))
            refused = dict(self._refused[name])
        statuses = [VersionStatus(v, "AVAILABLE") for v in loaded]
        statuses += [VersionStatus(v, "END", reason) for v, reason in refused.items() if v not in loaded]
        statuses.sort(key=lambda s: s.version, reverse=True)
        if version is not None:
            statuses = [s for s in statuses if s.version == version]
            if not statuses:
                raise ServingError(Code.NOT_FOUND, f"Could not find version {version} of model '{name}'")
        elif not statuses:
            raise ServingError(
                Code.NOT_FOUND,
                f"Could not find any versions of model '{name}' under {os.path.join(self.model_base, name)}",
            )
        return statuses

    # -- versions ---------------------------------------------------------------------------------------

    def poll(self) -> None:
        """One pass over every model's directory: load what is new, drop what is gone or superseded."""
        with self._poll_lock:
            self._read_config()
            for name, loader in self._loaders.items():
                self._poll_model(name, loader)
            for alias, resolve in self._aliases.items():
                self._resolve_alias(alias, resolve)

    def _read_config(self) -> None:
        if self.model_config_file is None:
            return
        try:
            stat = os.stat(self.model_config_file)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._config_stamp:
                return
            self._config_stamp = stamp
            with open(self.model_config_file, encoding="utf-8") as f:
                config = parse_model_config(f.read(), self.model_config_file)
        except (OSError, ValueError) as error:
            log.error("model config not applied, the last good one stays: %s", error)
            return
        with self._lock:
            self._config = config
        log.info("model config %s applied: %s", self.model_config_file, ", ".join(sorted(config)) or "empty")

    def _resolve_alias(self, alias: str, resolve: Callable[[], str]) -> None:
        try:
            target = resolve()
        except Exception:  # a bad resolve keeps the previous target serving
            log.exception("resolving the model alias %s failed; it keeps answering as before", alias)
            return
        if target not in self._loaders:
            log.error(
                "model alias %s names %r, not a served model; it keeps answering as before", alias, target
            )
            return
        with self._lock:
            previous = self._alias_targets.get(alias)
            self._alias_targets[alias] = target
        if target != previous:
            log.info("model %s now answers from %s", alias, target)

    def _poll_model(self, name: str, loader: ModelLoader) -> None:
        on_disk = version_dirs(os.path.join(self.model_base, name))
        current = self._loaded[name]
        keep: dict[int, _Entry] = {}
        policy = self._entry(name).policy or VersionPolicy("latest", num=self.keep_versions)
        wanted = set(policy.select(list(on_disk)))
        for version in sorted(on_disk, reverse=True):
            if policy.kind == "latest" and len(keep) == policy.num:
                break
            if version not in wanted and policy.kind != "latest":
                continue
            if version in current:
                keep[version] = current[version]
                continue
            if version in self._refused[name]:
                continue
            entry = self._load(name, loader, version, on_disk[version])
            if entry is not None:
                keep[version] = entry
                # Swap right away: the newest version serves while older ones are still loading.
                self._swap(name, {**current, **keep}, keep_all=True)
        self._swap(name, keep, keep_all=False)

    def _load(self, name: str, loader: ModelLoader, version: int, path: str) -> _Entry | None:
        missing = loader.missing_files(path)
        # A committed version was published whole: a file missing from it is damage, refused just below by
        # its manifest; without a record it may still be arriving (a legacy push), so it is looked at again.
        if missing and not push_records.committed_with_manifest(path):
            if version not in self._waiting[name]:
                log.warning(
                    "%s version %d at %s is incomplete (no %s); not loading it yet",
                    name,
                    version,
                    path,
                    ", ".join(missing),
                )
                self._waiting[name].add(version)
            return None
        self._waiting[name].discard(version)
        try:
            push_records.check_model_version(path)  # its files as pushed, before anything reads them
            with _switch_interval(self.loading_switch_interval_s):
                servable = loader.load(path, version)
        except Exception as error:  # any failure of a user's artifact refuses that version only
            reason = f"{type(error).__name__}: {error}"
            log.error(
                "%s version %d at %s refused, previous versions keep serving: %s", name, version, path, reason
            )
            self._refused[name][version] = reason
            return None
        log.info("%s version %d loaded from %s", name, version, path)
        return _Entry(servable)

    def _swap(self, name: str, new: dict[int, _Entry], keep_all: bool) -> None:
        with self._lock:
            old = self._loaded[name]
            self._loaded[name] = dict(new)
            retired = [] if keep_all else [entry for v, entry in old.items() if v not in new]
            to_close = []
            for entry in retired:
                entry.retired = True
                if entry.in_flight == 0:
                    to_close.append(entry)
        for entry in retired:
            log.info("%s version %d unloaded", name, entry.servable.version)
        for entry in to_close:
            self._close(entry)

    def _close(self, entry: _Entry) -> None:
        try:
            entry.servable.close()
        except Exception:
            log.exception("closing %s failed", entry.servable.directory)

    # -- the poller thread ------------------------------------------------------------------------------

    def start(self, poll_seconds: float) -> None:
        """Polls now, then every `poll_seconds` on a background thread."""
        self.poll()
        self._thread = threading.Thread(
            target=self._poll_loop, args=(poll_seconds,), name="poller", daemon=True
        )
        self._thread.start()

    def _poll_loop(self, poll_seconds: float) -> None:
        while not self._stop.wait(poll_seconds):
            try:
                self.poll()
            except Exception:
                log.exception("polling %s failed; trying again in %.1f s", self.model_base, poll_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            entries = [entry for versions in self._loaded.values() for entry in versions.values()]
            self._loaded = {name: {} for name in self._loaders}
        for entry in entries:
            entry.retired = True
            if entry.in_flight == 0:
                self._close(entry)
