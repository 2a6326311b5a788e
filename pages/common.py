"""What every page shares: the database, the gateways, the signed-in staff member.

Process-wide resources are cached with st.cache_resource (one per server process,
not per browser session); the signed-in person is the server-side session that this
browser's cookie names, read again on every call."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from decimal import Decimal, InvalidOperation
from typing import Mapping
from urllib.parse import urlsplit

import streamlit as st

from orders_core import authentication
from orders_core.authentication import SessionEnded, SignedIn
from orders_core.db import Database, open_database
from orders_core.errors import ValidationError
from orders_core.money import format_money
from orders_core.payments import Gateways
from orders_core.queries import SORTABLE, OrderFilters
from orders_core.staff import Actor, Permission, StaffAccount
from orders_core.status import Status
from orders_web import cookies

CUSTOMER_KEY = "customer_account"


@st.cache_resource(show_spinner=False)
def get_db() -> Database:
    return open_database()


@st.cache_resource(show_spinner=False)
def get_gateways() -> Gateways:
    return Gateways(get_db())


# -- who is signed in: the server-side session named by this browser's cookie -------------
# Read again on every call (an indexed look-up of the session and of the account), never
# kept in st.session_state: a deactivation or a new role counts at the very next click,
# in every tab, on every app server.

def sign_in_state() -> SignedIn | SessionEnded | None:
    return authentication.current_session(get_db(), st.context.cookies.get(cookies.SESSION))


def signed_in() -> SignedIn | None:
    state = sign_in_state()
    return state if isinstance(state, SignedIn) else None


def signed_in_staff() -> StaffAccount | None:
    state = signed_in()
    return state.account if state is not None else None


def current_actor() -> Actor:
    """The signed-in staff member as an Actor, read again now. Call it first in every
    page, fragment and dialog: a fragment's rerun does not run the entry point, so a
    session that ended meanwhile reruns the whole app, which shows why."""
    account = signed_in_staff()
    if account is None:
        # Once: the entry point then shows why (and clears the mark when signed in).
        # A page run without the entry point (a test) stops here instead of looping.
        if not st.session_state.get(ENDED_RERUN_KEY):
            st.session_state[ENDED_RERUN_KEY] = True
            st.rerun(scope="app")
        st.warning("Your session has ended. Reload the page to sign in again.")
        st.stop()
    return account.as_actor()


ENDED_RERUN_KEY = "_rerun_for_ended_session"


def client_address() -> str:
    return st.context.ip_address or ""


def csrf_value() -> str:
    """This browser's od_csrf cookie, which forms posting to our routes echo."""
    return st.context.cookies.get(cookies.CSRF) or ""


def current_path() -> str:
    """This page's path and query, for a sign-in to come back to."""
    url = st.context.url or ""
    parts = urlsplit(url)
    path = parts.path or "/"
    return path + (f"?{parts.query}" if parts.query else "")


def can(permission: Permission) -> bool:
    account = signed_in_staff()
    return account is not None and account.as_actor().can(permission)


def money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


# -- the Orders and Order pages: settings, escaping, URL parameters, statuses -------------
_log = logging.getLogger(__name__)

# Mass actions at or below these sizes are confirmed with one click; above them the
# person types the number of orders. Read on every use, so a restart is not needed.
CONFIRM_ABOVE_ORDERS_ENV = "ORDERS_CONFIRM_ABOVE_ORDERS"
CONFIRM_ABOVE_REFUND_ENV = "ORDERS_CONFIRM_ABOVE_REFUND"  # minor units, any one currency
DEFAULT_CONFIRM_ABOVE_ORDERS = 100
DEFAULT_CONFIRM_ABOVE_REFUND = 100_000


def _env_threshold(name: str, default: int) -> int:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    if re.fullmatch(r"\d{1,15}", raw):
        return int(raw)
    _log.warning("%s must be a whole number >= 0, not %r; using %d", name, raw, default)
    return default


def confirm_above_orders() -> int:
    return _env_threshold(CONFIRM_ABOVE_ORDERS_ENV, DEFAULT_CONFIRM_ABOVE_ORDERS)


def confirm_above_refund() -> int:
    return _env_threshold(CONFIRM_ABOVE_REFUND_ENV, DEFAULT_CONFIRM_ABOVE_REFUND)


def needs_typed_confirmation(order_count: int, refund_totals: Mapping[str, int]) -> bool:
    """True when a mass action is big enough that the person types the order count."""
    return (order_count > confirm_above_orders()
            or any(amount > confirm_above_refund() for amount in refund_totals.values()))


# -- text -----------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|:~$=&\"'^@%])")


def escape_markdown(text) -> str:
    """`text` as literal characters inside st.markdown / st.error / labels: every ASCII
    punctuation character that Markdown, Streamlit directives (:red[..], :icon:), math
    ($..$) or HTML could act on is backslash-escaped, and line breaks are kept."""
    value = _MD_SPECIAL.sub(r"\\\1", str(text))
    return value.replace("\r\n", "\n").replace("\n", "  \n")


# -- money in the URL and in filter boxes -------------------------------------------------
_AMOUNT = re.compile(r"^\d{1,10}(?:\.\d{1,2})?$")


def parse_major_amount(text, field: str) -> int | None:
    """'19.99' → 1999 minor units, exactly (Decimal, never float); '' → None.

    Totals are compared in each order's own currency with two decimals, as the shop
    mostly sells in (so '50' means $50.00, €50.00 or £50.00, and ¥5000)."""
    if text is None or str(text).strip() == "":
        return None
    raw = str(text).strip().replace(",", "")
    if not _AMOUNT.match(raw):
        raise ValidationError(f"{field} must be an amount like 25 or 19.99, not {str(text)[:40]!r}.")
    try:
        return int((Decimal(raw) * 100).to_integral_exact())
    except InvalidOperation:  # pragma: no cover - the pattern rules it out
        raise ValidationError(f"{field} must be an amount like 25 or 19.99.") from None


def format_major_amount(minor: int | None) -> str:
    """1999 → '19.99', 5000 → '50' (the inverse of parse_major_amount)."""
    if minor is None:
        return ""
    whole, cents = divmod(int(minor), 100)
    return str(whole) if cents == 0 else f"{whole}.{cents:02d}"


# -- the Orders page's view, as URL query parameters ---------------------------------------
PAGE_SIZE = 50
DEFAULT_SORT = "-created_at"
SORT_OPTIONS = {
    "-created_at": "Newest first",
    "created_at": "Oldest first",
    "-total_amount": "Total: high to low",
    "total_amount": "Total: low to high",
    "-number": "Order number: high to low",
    "number": "Order number: low to high",
    "status": "Status",
}
ORDER_PARAMS = ("status", "from", "to", "q", "sku", "min", "max", "page", "sort")
MAX_PAGE = 10**7


@dataclasses.dataclass(frozen=True)
class OrdersView:
    """What the Orders page shows: filters (tab included), page and sort."""
    filters: OrderFilters = OrderFilters()
    page: int = 1
    sort: str = DEFAULT_SORT

    @property
    def tab(self) -> str:
        return self.filters.status.value if self.filters.status else "all"

    @property
    def sort_column(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    def params(self) -> dict[str, str]:
        """The canonical query parameters (defaults left out)."""
        f = self.filters
        params = {"status": self.tab if f.status else None,
                  "from": f.created_from.isoformat() if f.created_from else None,
                  "to": f.created_to.isoformat() if f.created_to else None,
                  "q": f.search, "sku": f.sku,
                  "min": format_major_amount(f.min_total) if f.min_total is not None else None,
                  "max": format_major_amount(f.max_total) if f.max_total is not None else None,
                  "page": str(self.page) if self.page != 1 else None,
                  "sort": self.sort if self.sort != DEFAULT_SORT else None}
        return {k: v for k, v in params.items() if v}

    def selection_scope(self) -> str:
        """Identifies the set of matching orders (tab and filters, not page or sort)."""
        scoped = {k: v for k, v in self.params().items() if k not in ("page", "sort")}
        return hashlib.sha1(repr(sorted(scoped.items())).encode()).hexdigest()[:12]


def parse_orders_params(params: Mapping[str, object]) -> tuple[OrdersView, list[str]]:
    """The view the URL asks for, and a notice for each parameter that could not be
    used (that parameter falls back to its default; the others still apply).
    Never raises: the URL is user input."""
    def get(name: str) -> str | None:
        value = params.get(name)
        if isinstance(value, (list, tuple)):
            value = value[-1] if value else None
        return None if value is None else str(value)

    notices: list[str] = []
    fields: dict[str, object] = {}

    def take(name: str, field: str, convert=lambda v: v) -> None:
        raw = get(name)
        if raw is None or raw.strip() == "":
            return
        try:
            value = convert(raw)
            OrderFilters.parse(**{field: value})  # each field checked alone first
        except ValidationError as error:
            notices.append(f"Ignored {name}={raw[:40]!r}: {error}")
        else:
            fields[field] = value

    take("status", "status")
    take("from", "created_from")
    take("to", "created_to")
    take("q", "search")
    take("sku", "sku")
    take("min", "min_total", lambda v: parse_major_amount(v, "Minimum total"))
    take("max", "max_total", lambda v: parse_major_amount(v, "Maximum total"))
    try:
        filters = OrderFilters.parse(**fields)
    except ValidationError as error:  # the fields disagree with each other
        pairs = (("created_from", "created_to"), ("min_total", "max_total"))
        for pair in pairs:
            try:
                OrderFilters.parse(**{k: fields[k] for k in pair if k in fields})
            except ValidationError:
                for k in pair:
                    fields.pop(k, None)
        notices.append(f"Ignored the range: {error}")
        filters = OrderFilters.parse(**fields)

    page = 1
    raw_page = get("page")
    if raw_page not in (None, ""):
        if re.fullmatch(r"\d{1,8}", raw_page.strip()) and 1 <= int(raw_page) <= MAX_PAGE:
            page = int(raw_page)
        else:
            notices.append(f"Ignored page={raw_page[:40]!r}: not a page number; showing page 1.")

    sort = DEFAULT_SORT
    raw_sort = get("sort")
    if raw_sort not in (None, ""):
        if raw_sort in SORT_OPTIONS or (raw_sort.lstrip("-") in SORTABLE and raw_sort.count("-") <= 1):
            sort = raw_sort
        else:
            notices.append(f"Ignored sort={raw_sort[:40]!r}: use one of {', '.join(SORT_OPTIONS)}.")
    return OrdersView(filters, page, sort), notices


# -- statuses and links --------------------------------------------------------------------
STATUS_COLORS = {"created": "gray", "paid": "blue", "fulfilled": "green",
                 "canceled": "red", "returned": "orange"}
STATUS_ICONS = {"created": ":material/edit_note:", "paid": ":material/credit_card:",
                "fulfilled": ":material/local_shipping:", "canceled": ":material/block:",
                "returned": ":material/undo:"}
ORDERS_PAGE = "pages/orders_page.py"
ORDER_PAGE = "pages/order_detail.py"
JOBS_PAGE = "pages/jobs_page.py"


def status_label(status: str | Status | None) -> str:
    value = status.value if isinstance(status, Status) else (status or "")
    return value.capitalize() if value else "—"


def status_badge(status: str | Status) -> None:
    value = status.value if isinstance(status, Status) else str(status)
    st.badge(status_label(value), icon=STATUS_ICONS.get(value),
             color=STATUS_COLORS.get(value, "gray"))


def order_url(number: str) -> str:
    """Path of an order's detail page (the page's url_path is "order")."""
    return f"/order?number={number}"


def sign_out_here(state: SignedIn) -> None:
    """End this browser's session on the server (the sidebar's fallback without a form)."""
    authentication.sign_out(get_db(), st.context.cookies.get(cookies.SESSION),
                            client_address=client_address())


def browser_label(user_agent: str) -> str:
    """'Chrome 156 on Linux' from a user agent, for the sessions tables."""
    agent = user_agent or ""
    browser = next((name for key, name in (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
                                           ("HeadlessChrome/", "Headless Chrome"), ("Chrome/", "Chrome"),
                                           ("Safari/", "Safari")) if key in agent), "")
    version = ""
    if browser:
        key = {"Edge": "Edg/", "Opera": "OPR/", "Firefox": "Firefox/", "Headless Chrome": "HeadlessChrome/",
               "Chrome": "Chrome/", "Safari": "Version/"}[browser]
        if key in agent:
            version = agent.split(key, 1)[1].split(".", 1)[0].split(" ", 1)[0]
    system = next((name for key, name in (("Windows", "Windows"), ("Mac OS X", "macOS"), ("Android", "Android"),
                                          ("iPhone", "iOS"), ("Linux", "Linux")) if key in agent), "")
    label = " ".join(part for part in (browser, version) if part)
    if system:
        label = f"{label} on {system}" if label else system
    return label or (agent[:60] or "unknown")
