"""Where the staff pages are, for st.page_link and st.switch_page."""

from __future__ import annotations

from urllib.parse import parse_qsl

ORDERS_PAGE = "pages/orders_page.py"
ORDER_PAGE = "pages/order_detail.py"
JOBS_PAGE = "pages/jobs_page.py"
RECONCILIATION_PAGE = "pages/reconciliation_page.py"


def order_url(number: str) -> str:
    """Path of an order's detail page (the page's url_path is "order")."""
    return f"/order?number={number}"


ANALYTICS_PAGE = "pages/analytics_page.py"


def list_back(raw: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """The orders list's query parameters carried in an order link's `back=?…` (the
    list it was opened from): only the list's own parameter names, nothing else."""
    if not raw or not isinstance(raw, str) or len(raw) > 20000:
        return {}
    pairs = parse_qsl(raw.removeprefix("?"), keep_blank_values=False)
    return {k: v for k, v in pairs if k in allowed}
