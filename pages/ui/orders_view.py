"""The Orders and Analytics pages' view as URL query parameters: filters (tab
included), page and sort. The URL is the source of truth; every run reads it back."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping

from orders_core.money import format_amount_input
from orders_core.queries import SORTABLE, OrderFilters

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
ORDER_PARAMS = (
    "status",
    "from",
    "to",
    "q",
    "sku",
    "currency",
    "min",
    "max",
    "unfulfilled",
    "disputed",
    "attention",
    "page",
    "sort",
    "ticked",
)
# The URL's name of each OrderFilters field.
FILTER_PARAMS = {
    "status": "status",
    "from": "created_from",
    "to": "created_to",
    "q": "search",
    "sku": "sku",
    "currency": "currency",
    "min": "min_total",
    "max": "max_total",
    "unfulfilled": "unfulfilled_days",
    "disputed": "disputed",
    "attention": "needs_attention",
}
MAX_PAGE = 10**7
# The ticked orders of the view, in the URL so that Back and a reload bring them back:
# order numbers joined by commas, or "all" (every matching order).
TICKED_ALL = "all"
MAX_TICKED = 1000
_TICKED_NUMBER = re.compile(r"[A-Za-z]{1,8}-\d{1,12}")


@dataclasses.dataclass(frozen=True)
class OrdersView:
    """What the Orders page shows: filters (tab included), page and sort."""

    filters: OrderFilters = OrderFilters()
    page: int = 1
    sort: str = DEFAULT_SORT
    ticked: str = ""  # see TICKED_ALL

    @property
    def ticked_numbers(self) -> list[str]:
        return [] if self.ticked in ("", TICKED_ALL) else self.ticked.split(",")

    @property
    def ticked_all(self) -> bool:
        return self.ticked == TICKED_ALL

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
        params = {
            "status": self.tab if f.status else None,
            "from": f.created_from.isoformat() if f.created_from else None,
            "to": f.created_to.isoformat() if f.created_to else None,
            "q": f.search,
            "sku": f.sku,
            "currency": f.currency,
            "min": format_amount_input(f.min_total, f.currency or "usd") if f.min_total is not None else None,
            "max": format_amount_input(f.max_total, f.currency or "usd") if f.max_total is not None else None,
            "unfulfilled": str(f.unfulfilled_days) if f.unfulfilled_days is not None else None,
            "disputed": "1" if f.disputed else None,
            "attention": "1" if f.needs_attention else None,
            "page": str(self.page) if self.page != 1 else None,
            "sort": self.sort if self.sort != DEFAULT_SORT else None,
            "ticked": self.ticked or None,
        }
        return {k: v for k, v in params.items() if v}

    def selection_scope(self) -> str:
        """Identifies the set of matching orders (tab and filters, not page or sort)."""
        scoped = {k: v for k, v in self.params().items() if k not in ("page", "sort", "ticked")}
        return hashlib.sha1(repr(sorted(scoped.items())).encode()).hexdigest()[:12]


def filter_errors(params: Mapping[str, object]) -> tuple[OrderFilters | None, dict[str, str]]:
    """OrderFilters.validate over URL-named parameters: (filters, {}) or (None, {URL
    parameter: what is wrong with it, naming the field as the form labels it})."""
    given = {name: value for name, value in params.items() if value is not None}
    fields = {field: given[name] for name, field in FILTER_PARAMS.items() if name in given}
    filters, errors = OrderFilters.validate(**fields)
    by_field = {field: name for name, field in FILTER_PARAMS.items()}
    return filters, {by_field[field]: message for field, message in errors.items()}


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
    raw: dict[str, str] = {}
    for name in FILTER_PARAMS:
        value = get(name)
        if value is not None and value.strip() != "":
            raw[name] = value
    # Drop each bad value with a notice naming its field and what was wrong, and check
    # again (a currency dropped makes its totals unusable too): at most one round a field.
    filters: OrderFilters | None = None
    for _ in range(len(FILTER_PARAMS) + 1):
        filters, errors = filter_errors(raw)
        if filters is not None:
            break
        for name, message in errors.items():
            notices.append(f"Ignored {name}={raw.get(name, '')[:40]!r}: {message}")
            raw.pop(name, None)
    if filters is None:  # pragma: no cover - every round drops a field; none left is valid
        filters = OrderFilters()

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
    ticked, ticked_notice = parse_ticked(get("ticked"))
    if ticked_notice:
        notices.append(ticked_notice)
    return OrdersView(filters, page, sort, ticked), notices


def ticked_param(numbers: list[str], all_matching: bool) -> str:
    return TICKED_ALL if all_matching else ",".join(numbers[:MAX_TICKED])


def parse_ticked(raw: str | None) -> tuple[str, str | None]:
    """The `ticked` parameter in its canonical form, and a notice if it was refused."""
    if raw is None or raw.strip() == "":
        return "", None
    if raw.strip() == TICKED_ALL:
        return TICKED_ALL, None
    numbers = list(dict.fromkeys(n.strip().upper() for n in raw.split(",") if n.strip()))
    if len(numbers) > MAX_TICKED or not all(_TICKED_NUMBER.fullmatch(n) for n in numbers):
        return "", f"Ignored ticked={raw[:40]!r}: not a list of at most {MAX_TICKED:,} order numbers."
    return ",".join(numbers), None


def analytics_params(view: OrdersView) -> dict[str, str]:
    """The view's filters (tab included) for the Analytics page; it links back the same way."""
    return {k: v for k, v in view.params().items() if k not in ("page", "sort", "ticked")}
