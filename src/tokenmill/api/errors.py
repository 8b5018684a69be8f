"""OpenAI-style error objects: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
          429: "rate_limit_error", 503: "service_unavailable", 500: "server_error"}


class APIError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        kind = self.error_type or _TYPES.get(self.status, "invalid_request_error")
        return {"error": {"message": self.message, "type": kind,
                          "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    # in a union (content: str | list[parts]) each member reports; a check that ran beats "wrong type"
    first = next((e for e in errors if e.get("type") == "value_error"), errors[0] if errors else {})
    param = _param_name(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return APIError(400, "the request body is not valid JSON: " + first.get("msg", ""), code="invalid_json").response()
    if param is None and first.get("type") in ("model_attributes_type", "dict_type", "missing"):
        # FastAPI reads JSON only under a JSON content type; curl -d sends form encoding by default
        return APIError(400, "the request body must be a JSON object, sent with 'Content-Type: application/json'",
                        code="invalid_json").response()
    msg = first.get("msg", "invalid request")
    where = f"parameter '{param}'" if param else "the request body"
    return APIError(400, f"{where}: {msg}", param=param, code="invalid_parameter").response()


def _param_name(loc: tuple) -> str | None:
    """'messages[0].role' from pydantic's ('body', 'messages', 0, 'role'), without the union members it tried."""
    parts = []
    for p in loc[1:] if loc[:1] == ("body",) else loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif p.isidentifier() and p not in _TYPE_NAMES:
            parts.append(("." if parts else "") + p)
    return "".join(parts) or None


_TYPE_NAMES = {"str", "int", "float", "bool", "list", "dict", "none"}


def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return APIError(exc.status_code, str(exc.detail)).response()


def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    # still logged with its traceback by Starlette; the client gets an error object, not plain text
    return APIError(500, f"internal server error ({type(exc).__name__}); see the server log", code="internal_error").response()


def install_error_handlers(app) -> None:
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_exception_handler(APIError, lambda _r, e: e.response())
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
