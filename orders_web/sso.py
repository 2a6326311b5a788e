"""Single sign-on through Streamlit's own OpenID Connect support (`st.login`'s routes).

1. The sign-in page links to /sign-in/sso?provider=NAME for each provider configured
   under [auth.NAME] in .streamlit/secrets.toml. That route remembers where to go
   next (od_next) and sends the browser to Streamlit's /auth/login, exactly where
   `st.login(NAME)` sends it.
2. The provider signs the person in and returns to Streamlit's /oauth2callback, which
   stores the identity in Streamlit's signed cookie and redirects to "/".
3. The page gate (orders_web.gate) finds that cookie on a browser with no session of
   ours, reads the verified email from it on the server, and asks
   orders_core.authentication to start a session for the active staff account with
   that email: the same server-side session as a password sign-in, so revoking works
   the same way. Streamlit's identity cookie is then cleared: only our session counts.

The few Streamlit functions used to read and clear its identity cookie are internal to
Streamlit 1.67 (pinned in requirements.txt); tests/e2e/test_browser_sso.py drives the
whole flow against a real OpenID provider, so an upgrade that moves them fails there.
"""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from orders_core.config import load_settings

from . import cookies
from .paths import SIGN_IN, safe_next

log = logging.getLogger("orders_web.sso")

NEXT_MAX_AGE = 600
_LABELS = {
    "google": "Google",
    "microsoft": "Microsoft",
    "okta": "Okta",
    "auth0": "Auth0",
    "keycloak": "Keycloak",
    "entra": "Microsoft Entra ID",
    "azure": "Microsoft",
}
_PROVIDER_KEYS = {"client_id", "client_secret", "server_metadata_url"}


def _auth_section() -> dict:
    try:
        from streamlit.runtime.secrets import secrets_singleton

        if not secrets_singleton.load_if_toml_exists():
            return {}
        section = secrets_singleton.get("auth")
        return section.to_dict() if section is not None else {}
    except Exception:  # noqa: BLE001 - broken secrets: no SSO, said in the log
        log.warning("could not read [auth] from secrets.toml; single sign-on is off", exc_info=True)
        return {}


def providers() -> tuple[tuple[str, str], ...]:
    """(name, label) of each OpenID provider configured in secrets.toml's [auth]."""
    section = _auth_section()
    if not section.get("redirect_uri") or not section.get("cookie_secret"):
        return ()
    found = []
    for name, value in section.items():
        if isinstance(value, dict) and set(value) >= _PROVIDER_KEYS:
            found.append((name, _LABELS.get(name.lower(), name.replace("-", " ").title())))
    if not found and set(section) >= _PROVIDER_KEYS:
        found.append(("default", "single sign-on"))
    return tuple(sorted(found))


def start(request: Request) -> Response:
    """GET /sign-in/sso?provider=NAME&next=PATH: on to Streamlit's login route."""
    from streamlit.auth_util import encode_provider_token

    name = request.query_params.get("provider", "")
    known = dict(providers())
    if name not in known:
        return RedirectResponse(SIGN_IN, status_code=303)
    response = RedirectResponse(f"/auth/login?provider={encode_provider_token(name)}", status_code=303)
    cookies.set_cookie(
        response,
        request,
        load_settings(),
        cookies.NEXT,
        safe_next(request.query_params.get("next")),
        NEXT_MAX_AGE,
    )
    return response


def identity(request: Request) -> dict | None:
    """The identity Streamlit's OIDC callback stored in its signed cookie, or None."""
    from streamlit.web.server.starlette.starlette_auth_routes import _get_cookie_value_from_request
    from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

    if USER_COOKIE_NAME not in request.cookies:
        return None
    try:
        raw = _get_cookie_value_from_request(request, USER_COOKIE_NAME)
        value = json.loads(raw) if raw else None
    except (ValueError, TypeError):
        return None
    if not isinstance(value, dict) or not value.get("is_logged_in"):
        return None
    return value


def forget_identity(response: Response, request: Request) -> None:
    """Clear Streamlit's identity cookies: from here on only our session counts."""
    from streamlit.web.server.starlette.starlette_auth_routes import _clear_auth_cookie

    _clear_auth_cookie(response, request)


def email_verified(value: dict) -> bool:
    """OIDC's email_verified claim, which some providers send as the text "true"."""
    verified = value.get("email_verified")
    return verified is True or (isinstance(verified, str) and verified.lower() == "true")
