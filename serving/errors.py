"""Errors a request can end in, with the gRPC code and HTTP status TF Serving gives each.

One exception type for the REST and gRPC front ends, so both answer the same failure the same way.
"""

from __future__ import annotations

import enum


class Code(enum.Enum):
    """(gRPC status name, HTTP status), as tensorflow_model_server maps them."""

    INVALID_ARGUMENT = ("INVALID_ARGUMENT", 400)
    NOT_FOUND = ("NOT_FOUND", 404)
    FAILED_PRECONDITION = ("FAILED_PRECONDITION", 400)
    RESOURCE_EXHAUSTED = ("RESOURCE_EXHAUSTED", 413)
    DEADLINE_EXCEEDED = ("DEADLINE_EXCEEDED", 504)
    UNAVAILABLE = ("UNAVAILABLE", 503)
    INTERNAL = ("INTERNAL", 500)

    @property
    def grpc_name(self) -> str:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]


class ServingError(Exception):
    """A request that cannot be answered; the message goes back to the caller as is."""

    def __init__(self, code: Code, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
