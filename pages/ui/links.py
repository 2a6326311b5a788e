"""Where the staff pages are, for st.page_link and st.switch_page."""

from __future__ import annotations

ORDERS_PAGE = "pages/orders_page.py"
ORDER_PAGE = "pages/order_detail.py"
JOBS_PAGE = "pages/jobs_page.py"
RECONCILIATION_PAGE = "pages/reconciliation_page.py"


def order_url(number: str) -> str:
    """Path of an order's detail page (the page's url_path is "order")."""
    return f"/order?number={number}"
