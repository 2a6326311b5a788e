"""The cookies Orders Desk sets, all HttpOnly and SameSite=Lax.

- od_session: the session token (orders_core.sessions); Secure over HTTPS or when
  ORDERS_SESSION_COOKIE_SECURE=1. Its value is never logged or shown.
- od_csrf: a random value every form of ours echoes in a hidden field (double submit).
- od_next: where to go after single sign-on (a same-site path), for ten minutes.
- od_flash: one message for the sign-in page (why an SSO sign-in was refused).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import Response

from orders_core.config import Settings

SESSION = "od_session"
CSRF = "od_csrf"
NEXT = "od_next"
FLASH = "od_flash"
FLASH_MAX_LENGTH = 400


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def secure(request: Request, settings: Settings) -> bool:
    if settings.session_cookie_secure == "1":
        return True
    if settings.session_cookie_secure == "0":
        return False
    return is_https(request)


def set_cookie(
    response: Response, request: Request, settings: Settings, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure(request, settings),
    )


def clear_cookie(response: Response, request: Request, settings: Settings, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure(request, settings))


def set_session(response: Response, request: Request, settings: Settings, token: str) -> None:
    set_cookie(response, request, settings, SESSION, token, settings.session_max_days * 86_400)


def new_csrf_value() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(request: Request, submitted: str | None) -> bool:
    """The form's hidden value equals this browser's od_csrf cookie, and a browser's
    Origin (when it sends one) is this site."""
    expected = request.cookies.get(CSRF)
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1].rstrip("/") != host:
            return False
    elif origin == "null":
        return False
    return True


def set_flash(response: Response, request: Request, settings: Settings, message: str) -> None:
    """One message for the next sign-in page (percent-encoded: any text is cookie-safe)."""
    set_cookie(response, request, settings, FLASH, quote(message[:FLASH_MAX_LENGTH], safe=""), 120)


def read_flash(request: Request) -> str:
    return unquote(request.cookies.get(FLASH) or "")[:FLASH_MAX_LENGTH]
