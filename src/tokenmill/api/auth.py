"""Authentication in front of /v1/: a refused request is answered before its body is even read.

The principal (a tenant's key, or None for the operator) is left in the request's state for the
handlers; /health and /metrics stay open, /admin/ checks its own key.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tokenmill.api.errors import APIError
from tokenmill.gateway.accounting import Accounting


class AuthMiddleware:
    def __init__(self, app: ASGIApp, accounting: Accounting) -> None:
        self.app = app
        self.accounting = accounting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            try:
                principal = self.accounting.authenticate(header)
            except APIError as error:
                await error.response()(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
