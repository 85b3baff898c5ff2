"""Errors the server answers with, in OpenAI's error JSON.

Every failure a client sees is ``{"error": {"message", "type", "param", "code"}}`` with a 4xx/5xx
status, never a stack trace: unexpected exceptions are logged on the server and answered with a
generic 500.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """A request failure with its HTTP status and OpenAI error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """OpenAI's error object."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def internal_error() -> APIError:
    return APIError(500, "internal server error; the server log has the details", type="server_error")


# Status codes of errors raised by the framework itself (routing, methods), mapped to OpenAI types.
FRAMEWORK_TYPES = {404: "not_found_error", 405: "invalid_request_error"}
