"""The URL paths of the app's pages and routes, and where a sign-in may send a person.

Pure: no I/O. streamlit_app.py takes its page paths from here, so the page gate and
the navigation never disagree."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

# st.Page url_path of each page; "" is the default page (the orders list).
STAFF_PAGES = {
    "orders": "orders",
    "order": "order",
    "jobs": "jobs",
    "analytics": "analytics",
    "staff": "staff",
    "account": "account",
    "reconciliation": "reconciliation",
    "stripe_events": "stripe-events",
}
PUBLIC_PAGES = {"checkout": "checkout"}
STAFF_PAGE_PATHS = frozenset({""} | set(STAFF_PAGES.values()))
# The default page (the orders list) lives at "/": Streamlit gives the default page no
# path of its own, so /orders is sent there with its query.
DEFAULT_PAGE_ALIAS = STAFF_PAGES["orders"]
PUBLIC_PAGE_PATHS = frozenset(PUBLIC_PAGES.values())

SIGN_IN = "/sign-in"
SIGN_OUT = "/sign-out"
SSO_START = "/sign-in/sso"
HEALTHZ = "/healthz"
READYZ = "/readyz"
STRIPE_WEBHOOK = "/webhooks/stripe"  # Stripe's signed POSTs: no session, no CSRF (signature instead)
DEFAULT_NEXT = "/"
MAX_NEXT = 2000
# Never a destination after signing in: they would loop or act.
_NOT_NEXT = (SIGN_IN, SIGN_OUT, "/auth/", "/oauth2callback", "/_stcore/", "/webhooks/")


def page_segment(path: str) -> str:
    """'/orders/' -> 'orders', '/' -> ''."""
    return path.strip("/")


def is_staff_page(path: str) -> bool:
    return page_segment(path) in STAFF_PAGE_PATHS


def is_public_page(path: str) -> bool:
    return page_segment(path) in PUBLIC_PAGE_PATHS


def safe_next(value: str | None) -> str:
    """A same-site path (with its query) to go on to after signing in, else '/'.

    Refuses absolute and scheme-relative URLs ('//evil.example', '/\\evil.example'),
    control characters, and the sign-in routes themselves: no open redirect."""
    if not value or not isinstance(value, str) or len(value) > MAX_NEXT:
        return DEFAULT_NEXT
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return DEFAULT_NEXT
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    if any(parts.path == p.rstrip("/") or parts.path.startswith(p) for p in _NOT_NEXT):
        return DEFAULT_NEXT
    return value


def sign_in_url(next_path: str | None = None) -> str:
    target = safe_next(next_path)
    return SIGN_IN if target == DEFAULT_NEXT else f"{SIGN_IN}?next={quote(target, safe='')}"
