"""The page gate: ASGI middleware in front of Streamlit's page loads.

- A signed-out browser asking for a staff page (a reload, a bookmark, a shared link)
  is sent to /sign-in?next=<that page with its query>, and from there back to it.
- A browser that just came back from single sign-on (Streamlit's identity cookie, no
  session of ours) gets its session here, then goes on to the page it wanted.
- Every page load leaves this browser an od_csrf cookie for the forms of ours.

Only GET and HEAD of page paths are looked at; Streamlit's websocket, static files
and its own routes pass untouched. The script still checks the session on every run:
this gate only spares a signed-out visitor a page they cannot use."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orders_core import authentication
from orders_core.config import load_settings
from orders_core.errors import AuthenticationError

from . import cookies, sso
from .paths import (
    DEFAULT_PAGE_ALIAS,
    SIGN_IN,
    STRIPE_WEBHOOK,
    is_public_page,
    is_staff_page,
    page_segment,
    safe_next,
    sign_in_url,
)
from .resources import database

log = logging.getLogger("orders_web.gate")


class PageGate:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or scope["path"] == STRIPE_WEBHOOK
        ):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        staff_page = is_staff_page(path)
        if not staff_page and not is_public_page(path):
            await self.app(scope, receive, send)
            return
        if page_segment(path) == DEFAULT_PAGE_ALIAS:
            query = scope.get("query_string", b"").decode("latin-1")
            await RedirectResponse("/" + (f"?{query}" if query else ""), status_code=302)(
                scope, receive, send
            )
            return
        request = Request(scope)
        state = await run_in_threadpool(
            authentication.current_session, database(), request.cookies.get(cookies.SESSION), touch=False
        )
        signed_in = isinstance(state, authentication.SignedIn)
        if not signed_in:
            identity = sso.identity(request)
            if identity is not None:
                response = await self._hand_over(request, identity)
                await response(scope, receive, send)
                return
        if staff_page and not signed_in:
            query = scope.get("query_string", b"").decode("latin-1")
            wanted = path + (f"?{query}" if query else "")
            await RedirectResponse(sign_in_url(wanted), status_code=303)(scope, receive, send)
            return
        if request.cookies.get(cookies.CSRF):
            await self.app(scope, receive, send)
            return
        header = _set_cookie_header(request, cookies.CSRF, cookies.new_csrf_value())

        async def send_with_csrf_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", header)
            await send(message)

        await self.app(scope, receive, send_with_csrf_cookie)

    async def _hand_over(self, request: Request, identity: dict) -> Response:
        settings = load_settings()
        try:
            signed_in = await run_in_threadpool(
                authentication.sign_in_with_identity,
                database(),
                email=identity.get("email"),
                email_verified=sso.email_verified(identity),
                provider=str(identity.get("provider") or "sso"),
                provider_label=dict(sso.providers()).get(str(identity.get("provider"))),
                client_address=request.client.host if request.client else "",
                user_agent=request.headers.get("user-agent", ""),
                settings=settings,
            )
        except AuthenticationError as error:
            log.info("single sign-on refused: %s", error)
            response = RedirectResponse(SIGN_IN, status_code=303)
            cookies.set_flash(response, request, settings, str(error))
        else:
            response = RedirectResponse(safe_next(request.cookies.get(cookies.NEXT)), status_code=303)
            cookies.set_session(response, request, settings, signed_in.token)
        cookies.clear_cookie(response, request, settings, cookies.NEXT)
        sso.forget_identity(response, request)
        return response


def _set_cookie_header(request: Request, name: str, value: str) -> str:
    response = Response()
    cookies.set_cookie(response, request, load_settings(), name, value, None)
    return response.headers["set-cookie"]
