"""`pin2vec serve`: the REST and gRPC front ends over one model registry, on one asyncio loop.

Models: `embedding` (the exported SavedModel), `pin2vec` (the next-engagement index), `pin2vec_similar` (the
cosine index), `cooccurrence`, `board`, `blend` and `coldstart` (candidate tables), from
`<model_base>/<model>/<version>/`, polled; and `related`, the model a client calls by default, which answers
from the source the last push chose, and for an item it lacks from the cold-start fallbacks.
Add a model by adding its loader to `default_loaders`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine

from formats import coldstart, serving_layout
from serving import related_sources
from serving.access_log import BufferedLinesHandler
from serving.candidate_model import CandidateTableLoader
from serving.embedding_model import EmbeddingLoader
from serving.fallback_model import FallbackServable
from serving.model_config import parse_model_config
from serving.model_registry import Fallbacks, ModelRegistry
from serving.predict import RequestLimits
from serving.related_model import RelatedLoader, RelatedSettings
from serving.servable import ModelLoader

log = logging.getLogger("pin2vec.serving")
EVENT_LOOPS = ("uvloop", "asyncio")
GRPC_FRONTENDS = ("auto", "native", "python")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    model_base: str
    host: str = "127.0.0.1"  # loopback unless told otherwise
    rest_port: int = 8501  # TF Serving's defaults; 0 picks a free port
    grpc_port: int = 8500
    poll_seconds: float = 1.0  # TF Serving's --file_system_poll_wait_seconds default
    keep_versions: int = 2  # newest versions kept loaded, so a client may pin the previous one
    limits: RequestLimits = dataclasses.field(default_factory=RequestLimits)
    related: RelatedSettings = dataclasses.field(default_factory=RelatedSettings)
    shutdown_grace_s: float = 5.0
    # A REST connection must deliver a request's headers within this long of opening (or of its previous
    # answer), else it is closed: a slowloris client cannot hold connections; an idle keep-alive connection
    # closes after it too. (The body then has RequestLimits.timeout_s.)
    rest_header_timeout_s: float = 30.0
    # The event loop waits at most this long for the GIL while another thread runs Python code (Python's
    # default is 5 ms, which would show in request latencies)...
    gil_switch_interval_s: float = 0.001
    # ...and this long while a version loads, when the loader's Python code competes for the GIL (a shorter
    # wait per request during a swap; see docs/SERVING.md, Versions).
    loading_switch_interval_s: float = 0.0002
    # Processes answering gRPC on the one port (SO_REUSEPORT): this one plus grpc_workers - 1 workers, each
    # with its own copy of the models. Each answers from one Python thread at a time (the GIL); see
    # grpc_workers.py.
    grpc_workers: int = 1
    # "uvloop" (libuv's loop: on the grpc.aio front end, pin2vec serve answered 1.07x the gRPC requests a
    # second on it, the median of five `make bench-serving` runs) or "asyncio" (the standard library's).
    event_loop: str = "uvloop"
    # gRPC's transport: "native" (grpc++ in C++ threads, answers from Python; native_grpc_server.py),
    # "python" (grpc.aio) or "auto" (native when `make setup` built it, else python, with a warning).
    grpc_frontend: str = "auto"
    # TF Serving's --model_config_file: version policies and labels per model (model_config.py), polled.
    model_config_file: str | None = None

    def __post_init__(self):
        for name in ("rest_port", "grpc_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be in [0, 65535]; got {port}")
        for name in ("poll_seconds", "rest_header_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0; got {getattr(self, name)}")
        if self.grpc_workers < 1:
            raise ValueError(f"grpc_workers must be >= 1; got {self.grpc_workers}")
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(f"event_loop must be one of {EVENT_LOOPS}; got {self.event_loop!r}")
        if self.grpc_frontend not in GRPC_FRONTENDS:
            raise ValueError(f"grpc_frontend must be one of {GRPC_FRONTENDS}; got {self.grpc_frontend!r}")


def default_loaders(settings: ServerSettings) -> list[ModelLoader]:
    return [
        EmbeddingLoader(),
        RelatedLoader(serving_layout.PIN2VEC_MODEL, settings.related),
        RelatedLoader(serving_layout.PIN2VEC_SIMILAR_MODEL, settings.related),
        CandidateTableLoader(serving_layout.COOCCURRENCE_MODEL, settings.related),
        CandidateTableLoader(serving_layout.BOARD_MODEL, settings.related),
        CandidateTableLoader(serving_layout.BLEND_MODEL, settings.related),
        CandidateTableLoader(serving_layout.COLDSTART_MODEL, settings.related),
    ]


def build_registry(settings: ServerSettings, loaders: list[ModelLoader] | None = None) -> ModelRegistry:
    """The registry of `loaders` (default: every model), with `related` answering from the pushed default
    source, and for items it lacks from the cold-start fallbacks (where the default loaders are served)."""

    def default_model() -> str:
        return serving_layout.SOURCE_MODELS[related_sources.default_source(settings.model_base)]

    return ModelRegistry(
        settings.model_base,
        loaders or default_loaders(settings),
        settings.keep_versions,
        settings.loading_switch_interval_s,
        aliases=None if loaders else {serving_layout.DEFAULT_MODEL: default_model},
        model_config_file=settings.model_config_file,
        fallbacks=None if loaders else {serving_layout.DEFAULT_MODEL: cold_start_fallbacks()},
    )


def cold_start_fallbacks() -> Fallbacks:
    """What `related` answers an item its default source lacks from, in formats/coldstart.py's order."""
    models = tuple(serving_layout.SOURCE_MODELS[source] for source in coldstart.FALLBACK_ORDER)
    return Fallbacks(models, FallbackServable)


def grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def build_grpc_server(settings: ServerSettings, registry: ModelRegistry, reuse_port: bool):
    """The unstarted gRPC server of `settings.grpc_frontend`, listening on settings' host and gRPC port, and
    the port it bound."""
    from serving.grpc_server import build_server
    from serving.native_grpc_server import build_native_server, load_transport

    address = grpc_address(settings.host, settings.grpc_port)
    transport = None if settings.grpc_frontend == "python" else load_transport()
    if transport is None and settings.grpc_frontend == "native":
        raise RuntimeError(
            "grpc_frontend 'native' needs the C++ transport serving._grpc_frontend, which `make setup` "
            "builds (serving/native/build.sh); or run with --grpc-frontend python"
        )
    if transport is None:
        if settings.grpc_frontend == "auto":
            log.warning("the C++ gRPC transport is not built (make setup); gRPC is served by grpc.aio")
        return build_server(registry, settings.limits, address, reuse_port)
    return build_native_server(transport, registry, settings.limits, address, reuse_port)


def grpc_frontend_name(grpc_server) -> str:
    from serving.native_grpc_server import NativeGrpcServer

    return "native" if isinstance(grpc_server, NativeGrpcServer) else "python"


def _print_ready(ready: dict) -> None:
    print(json.dumps(ready), flush=True)


async def serve(
    settings: ServerSettings,
    loaders: list[ModelLoader] | None = None,
    on_ready: Callable[[dict], None] = _print_ready,
    stop: asyncio.Event | None = None,
    access_log_path: str | None = None,
) -> None:
    """Serves until `stop` is set (by default: until SIGINT/SIGTERM).

    Once listening, calls `on_ready({"event": "ready", "rest_port": ..., "grpc_port": ..., ...})`; by default
    that is one JSON line on stdout, which tells a supervisor (or a test) the ports actually bound.
    """
    from serving.grpc_workers import GrpcWorkers

    if loaders and settings.grpc_workers > 1:
        raise ValueError("gRPC workers load the default models; custom loaders need grpc_workers=1")
    registry = build_registry(settings, loaders)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, registry.start, settings.poll_seconds)

    grpc_server, grpc_port = build_grpc_server(settings, registry, reuse_port=settings.grpc_workers > 1)
    await grpc_server.start()
    workers = None
    try:
        if settings.grpc_workers > 1:
            workers = await loop.run_in_executor(
                None, GrpcWorkers.start, settings, grpc_port, settings.grpc_workers - 1, access_log_path
            )
        await _serve_rest_until_stopped(
            settings, registry, grpc_frontend_name(grpc_server), grpc_port, workers, on_ready, stop
        )
    finally:
        if workers:  # also when REST failed to start: no worker outlives its server
            await loop.run_in_executor(None, workers.stop, settings.shutdown_grace_s)
        await grpc_server.stop(settings.shutdown_grace_s)
        registry.stop()


async def _serve_rest_until_stopped(
    settings, registry, grpc_frontend, grpc_port, workers, on_ready, stop
) -> None:
    """Starts REST, announces readiness (gRPC is already listening), waits for `stop`, closes REST."""
    from aiohttp import web

    from serving.rest_server import RestFrontEnd

    loop = asyncio.get_running_loop()
    runner = web.AppRunner(
        RestFrontEnd(registry, settings.limits).app(),
        access_log=None,
        keepalive_timeout=settings.rest_header_timeout_s,  # aiohttp times headers out with it too
        handler_cancellation=True,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.rest_port, backlog=1024)
    await site.start()
    rest_port = runner.addresses[0][1]

    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    ready = {
        "event": "ready",
        "host": settings.host,
        "rest_port": rest_port,
        "grpc_port": grpc_port,
        "grpc_frontend": grpc_frontend,
        "grpc_pids": [os.getpid(), *(p.pid for p in workers.processes)] if workers else [os.getpid()],
        "models": {name: [s.version for s in _safe_status(registry, name)] for name in registry.model_names},
        "related_answers_from": registry.alias_target(serving_layout.DEFAULT_MODEL),
    }
    on_ready(ready)
    log.info(
        "pin2vec serve: REST on http://%s:%d, gRPC (%s) on %s:%d, models from %s",
        settings.host,
        rest_port,
        grpc_frontend,
        settings.host,
        grpc_port,
        settings.model_base,
    )
    await stop.wait()
    log.info("pin2vec serve: shutting down")
    await runner.cleanup()


def _safe_status(registry: ModelRegistry, name: str):
    try:
        return [s for s in registry.status(name) if s.state == "AVAILABLE"]
    except Exception:
        return []


def configure_logging(access_log_path: str | None) -> logging.Handler:
    """Server messages to stderr; access lines (JSON) to `access_log_path`, or stderr when None."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    access = logging.getLogger("pin2vec.access")
    access.propagate = False
    if access_log_path:
        stream, owns = open(access_log_path, "a", encoding="utf-8"), True  # noqa: SIM115 (closed by handler)
    else:
        stream, owns = sys.stderr, False
    handler = BufferedLinesHandler(stream, owns_stream=owns)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    return handler


def _uvloop():
    try:
        import uvloop
    except ImportError as error:
        raise RuntimeError(
            "event_loop 'uvloop' needs the uvloop package (`make setup` installs it); or run with "
            "--event-loop asyncio"
        ) from error
    return uvloop


def new_event_loop(event_loop: str) -> asyncio.AbstractEventLoop:
    """A new event loop of the kind `event_loop` names (EVENT_LOOPS)."""
    return asyncio.new_event_loop() if event_loop == "asyncio" else _uvloop().new_event_loop()


def run_loop(main: Coroutine, event_loop: str) -> None:
    """Runs `main` to completion on a new event loop of the kind `event_loop` names (EVENT_LOOPS)."""
    if event_loop == "asyncio":
        asyncio.run(main)
        return
    try:
        uvloop = _uvloop()
    except RuntimeError:
        main.close()
        raise
    uvloop.run(main)


def run(settings: ServerSettings, access_log_path: str | None = None) -> int:
    if not os.path.isdir(settings.model_base):  # TF Serving would wait for it; a typo should not look ready
        print(
            f"pin2vec serve: --model-base {settings.model_base} is not a directory; give a run's serving "
            "directory (<output-dir>/serving, written by `pin2vec run`)",
            file=sys.stderr,
        )
        return 2
    if settings.model_config_file:  # at start a bad config is refused; later edits keep the last good one
        try:
            with open(settings.model_config_file, encoding="utf-8") as f:
                parse_model_config(f.read(), f"--model-config-file {settings.model_config_file}")
        except (OSError, ValueError) as error:
            print(f"pin2vec serve: {error}", file=sys.stderr)
            return 2
    handler = configure_logging(access_log_path)
    sys.setswitchinterval(settings.gil_switch_interval_s)
    try:
        run_loop(serve(settings, access_log_path=access_log_path), settings.event_loop)
    finally:
        handler.close()
    return 0
