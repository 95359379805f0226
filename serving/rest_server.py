"""The REST front end (aiohttp): TF Serving's paths and JSON, errors as {"error": "..."}."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import orjson
from aiohttp import web

from serving import rest_api
from serving.access_log import log_request
from serving.errors import Code, ServingError
from serving.model_registry import ModelRegistry
from serving.predict import RequestLimits, predict

log = logging.getLogger("pin2vec.serving")
_JSON = "application/json"


def _json(body, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=_JSON)


class RestFrontEnd:
    def __init__(self, registry: ModelRegistry, limits: RequestLimits):
        self.registry = registry
        self.limits = limits

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.limits.max_body_bytes)
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        route = None
        rows = None
        served = None  # the version that answered (the latest, unless the path pins one)
        try:
            route = rest_api.parse_path(request.path)
            if route.label is not None:  # TF Serving's labels: the model config names their versions
                route = dataclasses.replace(
                    route, version=self.registry.label_version(route.name, route.label), label=None
                )
            if route.kind == "predict":
                if request.method != "POST":
                    raise ServingError(
                        Code.INVALID_ARGUMENT, f"{request.path} takes POST, not {request.method}"
                    )
                response, rows, served = await self._predict(request, route)
            elif request.method != "GET":
                raise ServingError(Code.INVALID_ARGUMENT, f"{request.path} takes GET, not {request.method}")
            elif route.kind == "metadata":
                response, served = self._metadata(route)
            else:
                response = rest_api.status_response(self.registry.status(route.name, route.version))
            log_request(
                "rest",
                request.method,
                route.name,
                served or route.version,
                200,
                started,
                rows,
                request.remote,
            )
            return _json(response)
        except ServingError as error:
            status, message = error.code.http_status, error.message
        except web.HTTPRequestEntityTooLarge:
            status, message = 413, f"request body over the {self.limits.max_body_bytes}-byte limit"
        except Exception as error:  # never a bare 500 without a logged cause
            log.exception("REST %s %s failed", request.method, request.path)
            status, message = 500, f"internal error: {type(error).__name__}: {error}"
        log_request(
            "rest",
            request.method,
            route and route.name,
            route and route.version,
            status,
            started,
            rows,
            request.remote,
            message,
        )
        return _json({"error": message}, status)

    async def _predict(self, request: web.Request, route: rest_api.Route):
        try:
            raw = await asyncio.wait_for(request.read(), self.limits.timeout_s)
        except asyncio.TimeoutError as error:
            raise ServingError(Code.DEADLINE_EXCEEDED, "request body not received in time") from error
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise ServingError(Code.INVALID_ARGUMENT, f"request body is not valid JSON: {error}") from error
        parsed = rest_api.parse_predict_request(body, self.limits.max_instances)
        result = await predict(
            self.registry, route.name, route.version, parsed.signature_name, parsed.decode_inputs, self.limits
        )
        rows = next(iter(result.outputs.values())).shape[0] if result.outputs else 0
        return rest_api.predict_response(result.outputs, parsed.row_format), rows, result.version

    def _metadata(self, route: rest_api.Route):
        with self.registry.acquire(route.name, route.version) as servable:
            signatures = dict(servable.signature_defs)
            return rest_api.metadata_response(route.name, servable.version, signatures), servable.version
