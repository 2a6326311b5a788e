"""HTTP routes: sign-in, sign-out, single sign-on start, /healthz and /readyz.

Database work runs in Starlette's thread pool (the endpoints are plain functions), so
a slow database never blocks the event loop that carries every page's websocket."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from orders_core import authentication
from orders_core.config import load_settings
from orders_core.errors import AuthenticationError, SignInLocked

from . import cookies, health, sso, webhooks
from .paths import HEALTHZ, READYZ, SIGN_IN, SIGN_OUT, SSO_START, STRIPE_WEBHOOK, safe_next
from .resources import database
from .sign_in_page import CONTENT_SECURITY_POLICY, SignInView, render

log = logging.getLogger("orders_web")

MAX_FORM_BYTES = 8_192


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def _html(request: Request, view: SignInView, status: int = 200, *, csrf_is_new: bool) -> HTMLResponse:
    settings = load_settings()
    response = HTMLResponse(
        render(view),
        status_code=status,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
            "Referrer-Policy": "same-origin",
        },
    )
    if csrf_is_new:
        cookies.set_cookie(response, request, settings, cookies.CSRF, view.csrf, None)
    return response


def _csrf(request: Request) -> tuple[str, bool]:
    value = request.cookies.get(cookies.CSRF)
    return (value, False) if value else (cookies.new_csrf_value(), True)


def _view(request: Request, **fields) -> tuple[SignInView, bool]:
    settings = load_settings()
    csrf, new = _csrf(request)
    return SignInView(
        csrf=csrf, password_sign_in=settings.password_sign_in, providers=sso.providers(), **fields
    ), new


def sign_in_form(request: Request) -> Response:
    """GET /sign-in: the form, or straight on when this browser is signed in already.
    An ended session's cookie says why it ended, once, and is cleared."""
    settings = load_settings()
    next_path = safe_next(request.query_params.get("next"))
    state = authentication.current_session(database(), request.cookies.get(cookies.SESSION), touch=False)
    if isinstance(state, authentication.SignedIn):
        return RedirectResponse(next_path, status_code=303)
    notice, error = "", ""
    if isinstance(state, authentication.SessionEnded):
        if state.reason == "you signed out":
            notice = "You are signed out."
        else:
            error = f"Your session has ended: {state.reason}."
    flash = cookies.read_flash(request)
    if flash:
        error = flash
    view, csrf_is_new = _view(request, next_path=next_path, notice=notice, error=error)
    response = _html(request, view, csrf_is_new=csrf_is_new)
    if state is not None:
        cookies.clear_cookie(response, request, settings, cookies.SESSION)
    if flash:
        cookies.clear_cookie(response, request, settings, cookies.FLASH)
    return response


async def _form(request: Request) -> dict[str, str] | None:
    """The url-encoded form, or None when it is too large or not a form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    return {key: values[-1] for key, values in fields.items()}


async def sign_in_submit(request: Request) -> Response:
    """POST /sign-in: check the form's CSRF value, then the password; on success the
    response sets the session cookie and sends the browser on (303)."""
    from starlette.concurrency import run_in_threadpool

    form = await _form(request)
    if form is None:
        return Response("A sign-in form of at most 8 KB, url-encoded, is expected.", 400)
    next_path = safe_next(form.get("next"))
    email = (form.get("email") or "")[:320]
    if not cookies.csrf_matches(request, form.get("csrf")):
        view, new = _view(
            request, next_path=next_path, email=email, error="This form had expired; please sign in again."
        )
        return _html(request, view, 403, csrf_is_new=new)
    settings = load_settings()
    try:
        signed_in = await run_in_threadpool(
            authentication.sign_in_with_password,
            database(),
            email,
            form.get("password") or "",
            client_address=client_address(request),
            user_agent=request.headers.get("user-agent", ""),
            settings=settings,
        )
    except SignInLocked as error:
        view, new = _view(request, next_path=next_path, email=email, error=str(error))
        response = _html(request, view, 429, csrf_is_new=new)
        response.headers["Retry-After"] = "900"
        return response
    except AuthenticationError as error:
        view, new = _view(request, next_path=next_path, email=email, error=str(error))
        return _html(request, view, 401, csrf_is_new=new)
    response = RedirectResponse(next_path, status_code=303)
    cookies.set_session(response, request, settings, signed_in.token)
    return response


async def sign_out(request: Request) -> Response:
    """POST /sign-out: the session ends on the server, and its cookie is cleared."""
    from starlette.concurrency import run_in_threadpool

    form = await _form(request)
    if form is None or not cookies.csrf_matches(request, form.get("csrf")):
        return Response("Sign-out needs the form of an Orders Desk page.", 403)
    await run_in_threadpool(
        authentication.sign_out,
        database(),
        request.cookies.get(cookies.SESSION),
        client_address=client_address(request),
    )
    # The cookie stays until /sign-in has read it: the revoked session says "signed out".
    return RedirectResponse(SIGN_IN, status_code=303)


def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def readyz(_request: Request) -> JSONResponse:
    report = health.readiness(database_url=database().url)
    return JSONResponse(report.as_json(), status_code=200 if report.ready else 503)


def routes() -> list[Route]:
    return [
        Route(SIGN_IN, sign_in_form, methods=["GET"]),
        Route(SIGN_IN, sign_in_submit, methods=["POST"]),
        Route(SIGN_OUT, sign_out, methods=["POST"]),
        Route(SSO_START, sso.start, methods=["GET"]),
        Route(HEALTHZ, healthz, methods=["GET"]),
        Route(READYZ, readyz, methods=["GET"]),
        Route(STRIPE_WEBHOOK, webhooks.stripe_webhook, methods=["POST"]),
    ]
