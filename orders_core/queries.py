"""Read models: the order list with its filters and per-status counts, and one
order's full detail. Filtering, sorting and paging all happen in SQL.

The list, the counts and the detail are read services: each asks
`staff.authorize(db, actor, Permission.VIEW)` first. `read_order` is the detail without
that check, for services that have authorized their own actor (a customer paying)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from sqlalchemy import and_, case, func, literal, literal_column, or_, select, table, union_all

from .addresses import PostalAddress
from .clock import utcnow
from .db import Database
from .dispute_queries import disputed_condition
from .errors import NotFound, ValidationError
from .money import AmountError, format_money, normalize_currency, parse_amount
from .order_detail import Customer, OrderDetail, OrderEvent, OrderItem, PaymentAttempt, Refund, iso
from .order_numbers import parse_order_number
from .schema import order_day_counts, order_events, order_items, order_skus, orders, payments, refunds, skus
from .staff import Actor, Permission, authorize
from .status import PaymentStatus, RefundAction, RefundStatus, Status
from .timeline import EventKind
from .validation import clean_text, whole_number

MAX_PAGE_SIZE = 500
SORTABLE = {
    "created_at": orders.c.created_at,
    "total_amount": orders.c.total_amount,
    "number": orders.c.id,
    "status": orders.c.status,
}


@dataclasses.dataclass(frozen=True)
class OrderFilters:
    """What narrows the order list. Every entry point builds one through `parse`, so
    bad input is refused the same way everywhere."""

    status: Status | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None  # inclusive
    search: str | None = None
    sku: str | None = None
    min_total: int | None = None  # minor units of `currency`
    max_total: int | None = None
    currency: str | None = None  # lower-case ISO 4217; the totals are in its units
    unfulfilled_days: int | None = None  # Paid, and paid more than this many days ago
    # Only orders with an open (or lost) dispute; only orders flagged for attention.
    disputed: bool = False
    needs_attention: bool = False

    @classmethod
    def parse(cls, **fields) -> OrderFilters:
        """The filters, or a FilterError about the first bad field (see `validate`)."""
        filters, errors = cls.validate(**fields)
        if filters is None:
            field, message = next(iter(errors.items()))
            raise FilterError(field, message)
        return filters

    @classmethod
    def validate(
        cls,
        *,
        status=None,
        created_from=None,
        created_to=None,
        search=None,
        sku=None,
        min_total=None,
        max_total=None,
        currency=None,
        unfulfilled_days=None,
        disputed=False,
        needs_attention=False,
    ) -> tuple[OrderFilters | None, dict[str, str]]:
        """Every field checked: (the filters, {}) or (None, {field: what is wrong}),
        each message naming its field as the filter form labels it.

        Totals are typed text in the currency's own units ('19.99' USD, '5000' JPY;
        money.parse_amount), so a total needs a currency; a currency alone keeps the
        orders in that currency."""
        errors: dict[str, str] = {}

        def check(field: str, convert):
            try:
                return convert()
            except ValidationError as error:
                errors[field] = str(error)
            except AmountError as error:
                errors[field] = str(error)
            return None

        parsed_status = check("status", lambda: _status(status))
        start = check("created_from", lambda: _date(created_from, FIELD_LABELS["created_from"]))
        end = check("created_to", lambda: _date(created_to, FIELD_LABELS["created_to"]))
        if start and end and start > end:
            errors["created_to"] = (
                f"{FIELD_LABELS['created_to']} {end} is before {FIELD_LABELS['created_from']} {start}."
            )
        text = check("search", lambda: clean_text(search, "Search", max_length=200, required=False) or None)
        code = check("sku", lambda: clean_text(sku, "SKU", max_length=64, required=False) or None)
        money_code = check("currency", lambda: _currency(currency))
        totals = {}
        for field, raw in (("min_total", min_total), ("max_total", max_total)):
            if raw is None or str(raw).strip() == "" or "currency" in errors:
                continue
            if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
                errors[field] = f"{FIELD_LABELS[field]}: type an amount like 25 or 19.99."
            elif money_code is None:
                errors[field] = (
                    f"{FIELD_LABELS[field]} needs a currency: a total is in one currency's own "
                    "units (give the currency too)."
                )
            else:
                totals[field] = check(
                    field, lambda raw=raw, field=field: parse_amount(raw, money_code, FIELD_LABELS[field])
                )
        low, high = totals.get("min_total"), totals.get("max_total")
        if low is not None and high is not None and low > high:
            errors["max_total"] = (
                f"{FIELD_LABELS['max_total']} {format_money(high, money_code or 'usd')} is below "
                f"{FIELD_LABELS['min_total']} {format_money(low, money_code or 'usd')}."
            )
        days = check(
            "unfulfilled_days",
            lambda: (
                None
                if unfulfilled_days in (None, "")
                else whole_number(
                    unfulfilled_days,
                    FIELD_LABELS["unfulfilled_days"],
                    minimum=0,
                    maximum=MAX_UNFULFILLED_DAYS,
                )
            ),
        )
        flags = {
            field: check(field, lambda value=value, field=field: _flag(value, FIELD_LABELS[field]))
            for field, value in (("disputed", disputed), ("needs_attention", needs_attention))
        }
        if errors:
            return None, errors
        built = cls(
            status=parsed_status,
            created_from=start,
            created_to=end,
            search=text,
            sku=code,
            min_total=low,
            max_total=high,
            currency=money_code,
            unfulfilled_days=days,
            disputed=bool(flags["disputed"]),
            needs_attention=bool(flags["needs_attention"]),
        )
        return built, {}

    @property
    def counted_by_day(self) -> bool:
        """Only a status and dates: order_day_counts answers how many, exactly."""
        return (
            not self.search
            and not self.sku
            and self.min_total is None
            and self.max_total is None
            and self.unfulfilled_days is None
            and not self.disputed
            and not self.needs_attention
        )

    def with_status(self, status: Status | None) -> OrderFilters:
        return dataclasses.replace(self, status=status)

    def describe(self) -> str:
        """In words, for a job's record of what its selection came from."""
        parts = [f"status {self.status.value}" if self.status else "all statuses"]
        if self.created_from:
            parts.append(f"from {self.created_from}")
        if self.created_to:
            parts.append(f"to {self.created_to}")
        if self.search:
            parts.append(f"matching {self.search!r}")
        if self.sku:
            parts.append(f"with SKU {self.sku}")
        money_code = self.currency or ""
        if self.currency and self.min_total is None and self.max_total is None:
            parts.append(f"in {self.currency.upper()}")
        if self.min_total is not None:
            parts.append(f"total ≥ {_money_words(self.min_total, money_code)}")
        if self.max_total is not None:
            parts.append(f"total ≤ {_money_words(self.max_total, money_code)}")
        if self.unfulfilled_days is not None:
            days = self.unfulfilled_days
            parts.append(f"unfulfilled for more than {days} day{'' if days == 1 else 's'}")
        if self.disputed:
            parts.append("disputed")
        if self.needs_attention:
            parts.append("needing attention")
        return ", ".join(parts)

    def unfulfilled_cutoff(self, now: dt.datetime | None = None) -> dt.datetime | None:
        """Paid before this time (naive UTC) for the ageing filter; None without it."""
        if self.unfulfilled_days is None:
            return None
        return (now or utcnow()) - dt.timedelta(days=self.unfulfilled_days)

    def conditions(self, *, include_status: bool = True, dialect: str | None = None) -> list:
        """The WHERE terms; with the database's `dialect`, a search uses its text index."""
        return self._conditions(include_status=include_status, dialect=dialect)

    def _conditions(
        self,
        *,
        include_status: bool = True,
        amounts_by_index: bool = True,
        sku_by_index: bool = True,
        currency_by_index: bool = True,
        dialect: str | None = None,
        sku_ids: list[int] | None = None,
    ) -> list:
        """The WHERE terms. On SQLite, which has no statistics to plan by, the list's
        own queries can turn two indexes off where they would mislead the planner:
        `amounts_by_index=False` keeps ix_orders_total out of a page not sorted by total
        (SQLite took any amount range for a selective one, looked every order in it up
        and sorted them: seconds at 1M, against a walk down ix_orders_created that
        stops after a page), `sku_by_index=False` keeps the order ids of a SKU from
        driving the query when a date range is narrower, and `currency_by_index=False`
        keeps ix_orders_currency_status_total (which the counts read alone) out of a
        page that ix_orders_status_created_total serves in order. The answers are the same.
        `sku_ids`: the SKU's ids, looked up already (see _planned)."""
        where = []
        if include_status and self.status is not None:
            where.append(orders.c.status == self.status.value)
        if self.created_from:
            where.append(orders.c.created_at >= dt.datetime.combine(self.created_from, dt.time()))
        if self.created_to:
            where.append(
                orders.c.created_at < dt.datetime.combine(self.created_to + dt.timedelta(days=1), dt.time())
            )
        if self.search:
            where.append(_search_condition(self.search, dialect))
        if self.sku:
            # The orders that have an item of the SKU, found from the SKU's side through
            # ix_order_items_sku_order (a correlated EXISTS probed every order instead).
            order_id = orders.c.id if sku_by_index else orders.c.id + 0
            of_sku = (
                order_items.c.sku_id.in_(sku_ids)
                if sku_ids is not None
                else order_items.c.sku_id.in_(select(skus.c.id).where(skus.c.code == self.sku))
            )
            where.append(order_id.in_(select(order_items.c.order_id).where(of_sku)))
        if self.currency:
            currency = orders.c.currency if currency_by_index else orders.c.currency.concat("")
            where.append(currency == self.currency)
        cutoff = self.unfulfilled_cutoff()
        if cutoff is not None:
            # Still Paid, paid before the cutoff. An order is paid after it is created, so
            # created_at < cutoff holds too: it bounds the range of the covering status
            # index (status, created_at, ...), and only that range's rows are looked up.
            where.append(orders.c.status == Status.PAID.value)
            where.append(orders.c.created_at < cutoff)
            where.append(orders.c.paid_at < cutoff)
        total = orders.c.total_amount if amounts_by_index else orders.c.total_amount + 0
        if self.min_total is not None:
            where.append(total >= self.min_total)
        if self.max_total is not None:
            where.append(total <= self.max_total)
        if self.disputed:
            where.append(disputed_condition())
        if self.needs_attention:
            where.append(orders.c.needs_attention.is_(True))
        return where

    def _planned(
        self,
        db: Database,
        *,
        include_status: bool = True,
        sorted_by_total: bool = False,
        page: bool = False,
    ) -> list:
        """conditions() shaped for SQLite's planner (see _conditions)."""
        if not db.is_sqlite:
            # The SKU's id as a constant, so PostgreSQL plans with its statistics for that
            # SKU: under a subquery it guessed an average SKU and walked ix_orders_created
            # probing every order's items (4 s at 1M for a SKU that was never sold).
            return self._conditions(
                include_status=include_status,
                dialect=db.engine.dialect.name,
                sku_ids=_sku_ids(db, self.sku) if self.sku else None,
            )
        dated = bool(self.created_from or self.created_to)
        return self._conditions(
            include_status=include_status,
            amounts_by_index=sorted_by_total,
            sku_by_index=not dated,
            currency_by_index=sorted_by_total or not page,
            dialect="sqlite",
        )


def _sku_ids(db: Database, code: str) -> list[int]:
    with db.read() as conn:
        return _sku_ids_in(conn, code)


def _sku_ids_in(conn, code: str | None) -> list[int]:
    return list(conn.execute(select(skus.c.id).where(skus.c.code == code)).scalars())


def _flag(value, field: str) -> bool:
    """A yes/no filter: a bool, or 1/0, true/false, yes/no (a URL's query)."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ValidationError(f"{field} must be yes or no, not {text[:40]!r}.")


FIELD_LABELS = {
    "status": "Status",
    "created_from": "Created from",
    "created_to": "Created to",
    "search": "Search",
    "sku": "Product / SKU",
    "currency": "Currency",
    "min_total": "Min total",
    "max_total": "Max total",
    "unfulfilled_days": "Unfulfilled over (days)",
    "disputed": "Disputed",
    "needs_attention": "Needs attention",
}
MAX_UNFULFILLED_DAYS = 3650


class FilterError(ValidationError):
    """A bad filter value; `field` is the OrderFilters field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _status(value) -> Status | None:
    if value in (None, "", "all"):
        return None
    try:
        return Status(str(value).strip().lower())
    except ValueError:
        raise ValidationError(
            f"Unknown status {str(value)[:40]!r}; use one of " + ", ".join(s.value for s in Status) + "."
        ) from None


def _currency(value) -> str | None:
    if value is None or str(value).strip() in ("", "any"):
        return None
    try:
        return normalize_currency(str(value))
    except ValueError:
        raise ValidationError(
            f"Currency: {str(value)[:40]!r} is not a three-letter currency code like USD."
        ) from None


def _money_words(amount: int, currency: str) -> str:
    return format_money(amount, currency) if currency else f"{amount} (minor units)"


def _date(value, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        parsed = dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(f"{field}: {str(value)[:40]!r} is not a date like 2026-01-31.") from None
    if not 2000 <= parsed.year <= 2100:
        raise ValidationError(f"{field}: {parsed} is out of range (2000 to 2100).")
    return parsed


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


TRIGRAM = 3  # the text index finds substrings of at least this many characters


def _search_condition(text: str, dialect: str | None = None):
    """An order number ('ORD-000123', 'ord-123', '123') is looked up by its id alone: the
    primary key answers at once, where OR-ing it with the text match below scanned every
    order's email and name. Anything else matches part of the email or the name, in any
    case: on PostgreSQL the pg_trgm indexes serve this LIKE as it is; on SQLite the FTS5
    trigram index (migration 0006) first finds the candidates (a case-folded superset)
    and the same LIKE decides, so the answers are the LIKE's either way."""
    order_id = parse_order_number(text)
    if order_id is not None:
        return orders.c.id == order_id
    pattern = f"%{_escape_like(text.lower())}%"
    matches = or_(
        func.lower(orders.c.customer_email).like(pattern, escape="\\"),
        func.lower(orders.c.customer_name).like(pattern, escape="\\"),
    )
    if dialect == "postgresql" and _index_key(text) != text:
        # pg_trgm reads the list of every trigram of the pattern, and those of
        # "@example.com" hold nearly every order: the index is asked for the part before
        # the '@' (a superset) and the whole pattern decides, kept off the index (|| '').
        key = f"%{_escape_like(_index_key(text).lower())}%"
        return and_(
            or_(
                func.lower(orders.c.customer_email).like(key, escape="\\"),
                func.lower(orders.c.customer_name).like(key, escape="\\"),
            ),
            or_(
                func.lower(orders.c.customer_email).concat("").like(pattern, escape="\\"),
                func.lower(orders.c.customer_name).concat("").like(pattern, escape="\\"),
            ),
        )
    if dialect != "sqlite" or len(text) < TRIGRAM:
        return matches
    phrase = _fts_phrase(text)
    candidates = (
        select(literal_column("rowid"))
        .select_from(table("orders_search"))
        .where(literal_column("orders_search").op("MATCH")(phrase))
    )
    return and_(orders.c.id.in_(candidates), matches)


LIST_COLUMNS = (
    orders.c.id,
    orders.c.number,
    orders.c.status,
    orders.c.customer_email,
    orders.c.customer_name,
    orders.c.total_amount,
    orders.c.refunded_amount,
    orders.c.currency,
    orders.c.item_count,
    orders.c.created_at,
    orders.c.updated_at,
    orders.c.needs_attention,
)


@dataclasses.dataclass(frozen=True)
class OrderPage:
    rows: list[dict]
    total: int
    page: int
    page_size: int
    total_exact: bool = True  # False: more than `total` orders match (list_orders' count_limit)

    @property
    def total_label(self) -> str:
        """The total as a person reads it: "1,234", or "10,000+" when it was capped."""
        return f"{self.total:,}" if self.total_exact else f"{self.total:,}+"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def list_orders(
    db: Database,
    filters: OrderFilters,
    *,
    actor: Actor,
    page: int = 1,
    page_size: int = 50,
    sort: str = "created_at",
    descending: bool = True,
    with_total: bool = True,
    count_limit: int | None = None,
    tabs: TabCounts | None = None,
) -> OrderPage:
    """One page of the orders under `filters`, and how many match. With `count_limit`,
    a search or a SKU filter (the views no summary or covering index counts) counts
    at most that many and says so (OrderPage.total_exact). `tabs`: tab_counts already
    taken for these filters (their status aside), so the total is not counted twice."""
    authorize(db, actor, Permission.VIEW)
    if count_limit is not None and with_total and _counted_by_scan(filters):
        count_limit = whole_number(count_limit, "Count limit", minimum=1, maximum=10**9)
        return _list_broad_view(
            db,
            filters,
            page=page,
            page_size=page_size,
            sort=sort,
            descending=descending,
            limit=count_limit,
            tabs=tabs,
        )
    page = whole_number(page, "Page", minimum=1, maximum=10**7)
    page_size = whole_number(page_size, "Page size", minimum=1, maximum=MAX_PAGE_SIZE)
    if sort not in SORTABLE:
        raise ValidationError(f"Cannot sort by {str(sort)[:40]!r}; use one of {', '.join(SORTABLE)}.")
    column = SORTABLE[sort]
    order_by = [column.desc(), orders.c.id.desc()] if descending else [column.asc(), orders.c.id.asc()]
    where = filters._planned(db, sorted_by_total=sort == "total_amount", page=True)
    query = (
        select(*LIST_COLUMNS)
        .where(*where)
        .order_by(*order_by)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    offset = (page - 1) * page_size
    by_status = (
        sort == "status" and filters.counted_by_day and not (filters.created_from or filters.created_to)
    )
    with db.read() as conn:
        if by_status and offset + page_size <= STATUS_PAGE_WALK:
            rows = _page_by_status(conn, filters, descending=descending, offset=offset, page_size=page_size)
        else:
            rows = [_list_row(r) for r in conn.execute(query)]
        dated = filters.created_from or filters.created_to
        amounts = filters.min_total is not None or filters.max_total is not None
        if not with_total:
            total = len(rows)
        elif filters.counted_by_day:
            total = sum(_day_counts(conn, filters, status=filters.status).values())
        elif filters.status is None and not filters.search and not filters.sku and dated and amounts:
            # Dates and amounts together: no one index covers both but the status one,
            # so the sum of the tabs' counts (each a range of it) is the cheapest.
            total = sum(_per_status_counts(conn, db, filters).values())
        else:
            # Without a status: COUNT(*) of the whole table, or of one covering range
            # (ix_orders_created for dates, ix_orders_total for amounts).
            planned = (
                filters._planned(db)
                if filters.status is not None
                else filters._planned(db, sorted_by_total=True)
            )
            total = conn.execute(select(func.count()).select_from(orders).where(*planned)).scalar_one()
    return OrderPage(rows, total, page, page_size)


STATUS_PAGE_WALK = 5_000  # the page by status walks the order ids up to this deep (deeper: as before)


def _page_by_status(
    conn, filters: OrderFilters, *, descending: bool, offset: int, page_size: int
) -> list[dict]:
    """A page sorted by status, then number, without sorting a status's orders: the kept
    counts per status (order_day_counts) say which statuses the page spans, and each is
    read along the primary key (its status tested per order, kept off the status index,
    which is not in id order), stopping after its share of the page. ORDER BY status, id
    sorted all of a status's orders first (about 150,000 at a million: 150 ms)."""
    counts = _day_counts(conn, filters)
    where = [
        term for term in filters.with_status(None)._conditions(currency_by_index=False) if term is not None
    ]
    rows: list[dict] = []
    skip = offset
    for status in sorted((s.value for s in Status), reverse=descending):
        if filters.status is not None and status != filters.status.value:
            continue
        here = counts.get(status, 0)
        if skip >= here:
            skip -= here
            continue
        query = (
            select(*LIST_COLUMNS)
            .where(orders.c.status.concat("") == status, *where)
            .order_by(orders.c.id.desc() if descending else orders.c.id.asc())
            .limit(page_size - len(rows))
            .offset(skip)
        )
        rows += [_list_row(r) for r in conn.execute(query)]
        skip = 0
        if len(rows) >= page_size:
            break
    return rows


def _list_row(row) -> dict:
    return {
        "id": row.id,
        "number": row.number,
        "status": row.status,
        "customer_email": row.customer_email,
        "customer_name": row.customer_name,
        "total_amount": row.total_amount,
        "refunded_amount": row.refunded_amount,
        "currency": row.currency,
        "item_count": row.item_count,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "needs_attention": bool(row.needs_attention),
    }


def count_by_status(db: Database, filters: OrderFilters, *, actor: Actor) -> dict[str, int]:
    """Orders per status under the filters (ignoring the filters' own status): the tabs.

    Under dates alone (or nothing), from order_day_counts, which the database keeps
    with the orders. With amounts, a search or a SKU the orders are counted, shaped for
    the indexes (measured at a million orders with bench/): with only dates
    and amounts, one COUNT(*) per status, each a range of the covering index
    ix_orders_status_created_total (a GROUP BY over the same index costs about half as
    much again per row, and under a date range the planner preferred ix_orders_created
    plus a table lookup per row). With a search or a SKU, one pass with a conditional
    count per status, so the planner picks its access path from the filters alone (with
    a GROUP BY it walked the status index and looked every row up out of order)."""
    authorize(db, actor, Permission.VIEW)
    with db.read() as conn:
        counts = _per_status_counts(conn, db, filters)
    result = {s.value: counts.get(s.value, 0) for s in Status}
    result["all"] = sum(result.values())
    return result


def _day_counts(conn, filters: OrderFilters, *, status: Status | None = None) -> dict[str, int]:
    """Orders per status from order_day_counts (dates are whole days, so the range is
    exact): a few hundred rows read, whatever the number of orders."""
    where = []
    if filters.created_from:
        where.append(order_day_counts.c.day >= filters.created_from)
    if filters.created_to:
        where.append(order_day_counts.c.day <= filters.created_to)
    if status is not None:
        where.append(order_day_counts.c.status == status.value)
    if filters.currency:
        where.append(order_day_counts.c.currency == filters.currency)
    query = (
        select(order_day_counts.c.status, func.sum(order_day_counts.c.orders))
        .where(*where)
        .group_by(order_day_counts.c.status)
    )
    return {status: int(n or 0) for status, n in conn.execute(query)}


def _per_status_counts(conn, db: Database, filters: OrderFilters) -> dict[str, int]:
    if filters.counted_by_day:
        return _day_counts(conn, filters)
    where = filters._planned(db, include_status=False)
    if not filters.search and not filters.sku:
        query = union_all(
            *(
                select(literal(s.value), func.count())
                .select_from(orders)
                .where(orders.c.status == s.value, *where)
                for s in Status
            )
        )
        return {status: n for status, n in conn.execute(query)}
    query = (
        select(*(func.count(case((orders.c.status == s.value, 1))) for s in Status))
        .select_from(orders)
        .where(*where)
    )
    return dict(zip((s.value for s in Status), conn.execute(query).one()))


# -- broad searches and SKUs: counts up to a limit ---------------------------------------------
COUNT_LIMIT = 10_000  # a search or SKU view counts this many matches at most, unless asked


@dataclasses.dataclass(frozen=True)
class TabCounts:
    """The tabs' counts under some filters. Exact, or (`exact` False) more than `limit`
    orders match: then only "all" is known, as the lower bound `limit`, and the
    statuses are None (not counted), never a guess."""

    counts: dict[str, int | None]
    exact: bool = True
    limit: int | None = None
    # Over the limit, the statuses that were counted anyway (each up to the limit, from
    # order_skus): the list's total under one of them reuses it instead of counting again.
    counted_statuses: dict[str, int] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def get(self, key: str, default=0):
        value = self.counts.get(key, default)
        return default if value is None else value

    def label(self, key: str) -> str:
        """ "1,234"; "10,000+" for "all" over the limit; "…" for a status not counted."""
        value = self.counts.get(key)
        if value is None:
            return "…"
        return f"{value:,}+" if not self.exact and key == "all" else f"{value:,}"


def _counted_by_scan(filters: OrderFilters) -> bool:
    """A search (other than an order number) or a SKU: counting it means visiting every
    matching order, where the other filters are counted from order_day_counts or a
    covering index range."""
    searching = bool(filters.search) and parse_order_number(filters.search) is None
    return searching or bool(filters.sku)


def tab_counts(
    db: Database, filters: OrderFilters, *, actor: Actor, limit: int | None = COUNT_LIMIT
) -> TabCounts:
    """count_by_status, but a search or SKU view counts at most `limit` matching orders
    (one pass over at most limit + 1 of them, through the text index or the SKU's
    index); `limit=None` counts exactly, however many (the page's "Count exactly")."""
    authorize(db, actor, Permission.VIEW)
    if limit is None or not _counted_by_scan(filters):
        counts: dict[str, int | None] = dict(count_by_status(db, filters, actor=actor))
        return TabCounts(counts)
    limit = whole_number(limit, "Count limit", minimum=1, maximum=10**9)
    with db.read() as conn:
        if _kept_sku_view(filters):
            per_status, each = _sku_statuses_up_to(conn, filters.with_status(None), limit)
            found = per_status if sum(per_status.values()) <= limit else None
        else:
            per_status, each = {}, False
            found = _statuses_up_to(conn, db, filters.with_status(None), limit)
    if found is None:
        return TabCounts(
            {"all": limit, **{s.value: None for s in Status}},
            exact=False,
            limit=limit,
            counted_statuses={k: n for k, n in per_status.items() if each and n <= limit},
        )
    exact = {s.value: found.get(s.value, 0) for s in Status}
    exact["all"] = sum(exact.values())
    return TabCounts(dict(exact), limit=limit)


def _statuses_up_to(conn, db: Database, filters: OrderFilters, limit: int) -> dict[str, int] | None:
    """Matching orders per status, from at most limit + 1 of them; None: more than `limit`.
    On SQLite a search is read from the FTS5 index joined to orders by rowid (an IN over
    the index's candidates made SQLite collect all of them first: 0.4 s for a domain at
    1M orders, against 30 ms for the first 10,001 this way)."""
    if db.is_sqlite and _fts_phrase(filters.search) is not None:
        text = table("orders_search")
        rowid = literal_column("orders_search.rowid")
        query = (
            select(orders.c.status)
            .select_from(text.join(orders, orders.c.id == rowid))
            .where(literal_column("orders_search").op("MATCH")(_fts_phrase(filters.search)))
            # The LIKE decides, as in _search_condition. likely() keeps every other term off
            # orders' indexes, so the text index drives the join (SQLite otherwise walked
            # the status index and probed the text index order by order: seconds).
            .where(*(func.likely(term) for term in filters._conditions(dialect=None)))
        )
    elif (
        db.is_sqlite
        and filters.sku
        and not (filters.search or filters.status or filters.created_from or filters.created_to)
    ):
        # A SKU alone (or with amounts): its items drive (ix_order_items_sku_order), each
        # joined to its order by id, and the first limit + 1 end it; an IN over the SKU's
        # order ids made SQLite collect all of them first. (Under a status or dates the
        # planned query stays: their index narrows faster than the SKU's items.)
        # DISTINCT: an order listing the SKU on two lines is one order.
        query = (
            select(orders.c.id, orders.c.status)
            .select_from(order_items.join(orders, orders.c.id == order_items.c.order_id))
            .where(order_items.c.sku_id.in_(select(skus.c.id).where(skus.c.code == filters.sku)))
            .where(*(func.likely(term) for term in dataclasses.replace(filters, sku=None)._conditions()))
            .distinct()
        )
    else:
        query = select(orders.c.status).where(*filters._planned(db))
    first = query.limit(limit + 1).subquery()
    counts = {
        status: n for status, n in conn.execute(select(first.c.status, func.count()).group_by(first.c.status))
    }
    return None if sum(counts.values()) > limit else counts


def _kept_sku_view(filters: OrderFilters) -> bool:
    """A SKU view that order_skus drives: its (sku, status, created_at) key narrows by
    the SKU, the status and the dates at once, its rows carry the order's total and
    currency; any other filter but a search (whose text index drives) is tested on each
    order, joined by id."""
    return bool(filters.sku) and not filters.search


def _sku_range(conn, filters: OrderFilters, sku_ids: list[int], status: Status | None, *columns):
    """SELECT `columns` over one (SKU, status, dates) range of order_skus, its amounts and
    currency tested in the same rows (they are the order's), joined to the orders only
    when other filters need them (the ageing filter, disputes, attention)."""
    where = [order_skus.c.sku_id == sku_ids[0] if len(sku_ids) == 1 else order_skus.c.sku_id.in_(sku_ids)]
    if status is not None:
        where.append(order_skus.c.status == status.value)
    if filters.created_from:
        where.append(order_skus.c.created_at >= dt.datetime.combine(filters.created_from, dt.time()))
    if filters.created_to:
        end = dt.datetime.combine(filters.created_to + dt.timedelta(days=1), dt.time())
        where.append(order_skus.c.created_at < end)
    if filters.currency:
        where.append(order_skus.c.currency == filters.currency)
    if filters.min_total is not None:
        where.append(order_skus.c.total_amount >= filters.min_total)
    if filters.max_total is not None:
        where.append(order_skus.c.total_amount <= filters.max_total)
    rest = dataclasses.replace(
        filters,
        sku=None,
        status=None,
        created_from=None,
        created_to=None,
        currency=None,
        min_total=None,
        max_total=None,
    )
    others = rest._conditions(dialect=conn.dialect.name)
    source = order_skus.join(orders, orders.c.id == order_skus.c.order_id) if others else order_skus
    return select(*columns).select_from(source).where(*where, *others)


def _kept_statuses(filters: OrderFilters) -> list[Status]:
    return [filters.status] if filters.status is not None else list(Status)


def _sku_statuses_up_to(conn, filters: OrderFilters, limit: int) -> tuple[dict[str, int], bool]:
    """Matching orders per status from order_skus (the orders visited only for filters
    beyond SKU, status, dates and amounts), and whether each status was counted on its
    own. Without dates, the SKU's range in key order, its first limit + 1 rows (a sum
    over the limit says nothing of any one status); with a status or dates, each status
    is one index range counted up to limit + 1: exact up to `limit`, above it "more"."""
    sku_ids = _sku_ids_in(conn, filters.sku)
    if not sku_ids:  # a SKU never sold (or no such code): nothing to read
        return {s.value: 0 for s in _kept_statuses(filters)}, True
    if filters.status is None and not (filters.created_from or filters.created_to):
        first = _sku_range(conn, filters, sku_ids, None, order_skus.c.status).limit(limit + 1).subquery()
        counted = dict(conn.execute(select(first.c.status, func.count()).group_by(first.c.status)).all())
        return {s.value: int(counted.get(s.value, 0)) for s in Status}, False
    ranges = [
        select(literal(s.value).label("status"), func.count().label("n")).select_from(
            _sku_range(conn, filters, sku_ids, s, literal(1)).limit(limit + 1).subquery()
        )
        for s in _kept_statuses(filters)
    ]
    return {status: int(n) for status, n in conn.execute(union_all(*ranges))}, True


def _sku_page(conn, filters: OrderFilters, *, descending: bool, offset: int, page_size: int) -> list[dict]:
    """A page of a SKU view by creation time, walked along order_skus' key (each status
    its own range, merged) and joined to the orders for its columns: the same rows as
    ORDER BY created_at, id over the orders."""
    direction = (lambda c: c.desc()) if descending else (lambda c: c.asc())
    sku_ids = _sku_ids_in(conn, filters.sku)
    if not sku_ids:
        return []
    ranges = [
        select(
            _sku_range(conn, filters, sku_ids, s, order_skus.c.order_id, order_skus.c.created_at)
            .order_by(direction(order_skus.c.created_at), direction(order_skus.c.order_id))
            .limit(offset + page_size)
            .subquery()
        )
        for s in _kept_statuses(filters)
    ]
    found = (union_all(*ranges) if len(ranges) > 1 else ranges[0]).subquery()
    query = (
        select(*LIST_COLUMNS)
        .select_from(found.join(orders, orders.c.id == found.c.order_id))
        .order_by(direction(found.c.created_at), direction(found.c.order_id))
        .limit(page_size)
        .offset(offset)
    )
    return [_list_row(r) for r in conn.execute(query)]


SKU_PAGE_WALK = 5_000  # rows per status the page of a SKU view walks at most (deeper: as before)


def _index_key(text: str) -> str:
    """What the text index is asked for `text`: the candidates only need to be a superset
    (the LIKE decides), and the index's cost is its commonest trigrams, so of a whole
    email the part before the '@' alone (FTS5 took 172 ms for one email at 1M orders,
    19 ms for its part before the '@': "@example.com" is in nearly every order)."""
    local = text.split("@", 1)[0]
    return local if "@" in text and len(local) >= TRIGRAM else text


def _fts_phrase(text: str | None) -> str | None:
    """The FTS5 phrase _search_condition matches for `text`, or None when it does not use
    the text index (no search, an order number, fewer than three characters)."""
    if not text or parse_order_number(text) is not None or len(text) < TRIGRAM:
        return None
    return '"' + _index_key(text).replace('"', '""') + '"'


def _list_broad_view(db, filters, *, page, page_size, sort, descending, limit, tabs=None) -> OrderPage:
    """list_orders for a search or SKU view, counting at most `limit` matches. When more
    match, the page walks the sort's index and tests each order (the LIKE, or the SKU
    through the order's items), stopping after one page: at a fifth of all orders a
    page of 50 visits about 250 orders, where collecting every candidate from the text
    or SKU index first and sorting them cost 0.4-0.8 s at 1M. When fewer match, those
    few are looked up from the index as before."""
    page = whole_number(page, "Page", minimum=1, maximum=10**7)
    page_size = whole_number(page_size, "Page size", minimum=1, maximum=MAX_PAGE_SIZE)
    if sort not in SORTABLE:
        raise ValidationError(f"Cannot sort by {str(sort)[:40]!r}; use one of {', '.join(SORTABLE)}.")
    column = SORTABLE[sort]
    order_by = [column.desc(), orders.c.id.desc()] if descending else [column.asc(), orders.c.id.asc()]
    with db.read() as conn:
        key = filters.status.value if filters.status else "all"
        kept = _kept_sku_view(filters)
        if tabs is not None and tabs.counts.get(key) is not None and (tabs.exact or key == "all"):
            total, exact = int(tabs.counts[key] or 0), tabs.exact  # counted with the tabs
            found = {key: total} if exact and total <= limit else None
        elif tabs is not None and kept and key in tabs.counted_statuses:
            found = {key: tabs.counted_statuses[key]}  # counted with the tabs, up to the limit
            total, exact = found[key], True
        elif kept:
            counted, _ = _sku_statuses_up_to(conn, filters, limit)
            found = counted if sum(counted.values()) <= limit else None
            total, exact = (sum(counted.values()), True) if found is not None else (limit, False)
        else:
            found = _statuses_up_to(conn, db, filters, limit)
            total, exact = (sum(found.values()), True) if found is not None else (limit, False)
        broad = found is None
        offset = (page - 1) * page_size
        walk = offset + page_size
        if kept and sort == "created_at" and (filters.status is not None or walk <= SKU_PAGE_WALK):
            rows = _sku_page(conn, filters, descending=descending, offset=offset, page_size=page_size)
        else:
            if broad and db.is_sqlite:
                where = _walking_conditions(filters, sorted_by_total=sort == "total_amount")
            else:
                where = filters._planned(db, sorted_by_total=sort == "total_amount")
            query = select(*LIST_COLUMNS).where(*where).order_by(*order_by).limit(page_size).offset(offset)
            rows = [_list_row(r) for r in conn.execute(query)]
    if not exact:  # at least the limit, and at least every order up to this page's last
        return OrderPage(
            rows,
            max(total, (page - 1) * page_size + len(rows) if rows else 0),
            page,
            page_size,
            total_exact=False,
        )
    return OrderPage(rows, total, page, page_size)


def _walking_conditions(filters: OrderFilters, *, sorted_by_total: bool) -> list:
    """The WHERE terms tested order by order along the sort's index (SQLite): the search
    as its LIKE alone, the SKU as a probe of the order's own items (ix_order_items_order_id)."""
    where = dataclasses.replace(filters, sku=None)._conditions(
        amounts_by_index=sorted_by_total, sku_by_index=False, dialect=None
    )
    if filters.sku:
        where.append(
            select(order_items.c.id)
            .where(
                order_items.c.order_id == orders.c.id,
                order_items.c.sku_id.in_(select(skus.c.id).where(skus.c.code == filters.sku)),
            )
            .exists()
        )
    return where


def matching_order_ids(conn, filters: OrderFilters, *, limit: int | None = None) -> list[int]:
    query = select(orders.c.id).where(*filters.conditions(dialect=conn.dialect.name)).order_by(orders.c.id)
    if limit:
        query = query.limit(limit)
    return [r[0] for r in conn.execute(query)]


def order_detail(db: Database, number: str, *, actor: Actor) -> OrderDetail:
    """Everything about one order, in the shape `python -m orders_core show` prints."""
    authorize(db, actor, Permission.VIEW)
    return read_order(db, number)


def read_order(db: Database, number: str) -> OrderDetail:
    """order_detail without the permission check: what a service that has authorized
    its actor returns (a customer may pay for an order, not browse orders)."""
    order_id = parse_order_number(number) if isinstance(number, str) else None
    with db.read() as conn:
        order = (
            conn.execute(select(orders).where(orders.c.id == order_id)).one_or_none()
            if order_id is not None
            else None
        )
        if order is None:
            raise NotFound(f"No order {str(number)[:40]!r}.")
        items = conn.execute(
            select(order_items).where(order_items.c.order_id == order.id).order_by(order_items.c.id)
        ).all()
        payment_rows = conn.execute(
            select(payments).where(payments.c.order_id == order.id).order_by(payments.c.id)
        ).all()
        refund_rows = conn.execute(
            select(refunds).where(refunds.c.order_id == order.id).order_by(refunds.c.id)
        ).all()
        events = conn.execute(
            select(order_events).where(order_events.c.order_id == order.id).order_by(order_events.c.id)
        ).all()
    attempts = tuple(_payment(p) for p in payment_rows)
    succeeded = [p for p in attempts if p.status == PaymentStatus.SUCCEEDED]
    return OrderDetail(
        number=order.number,
        status=Status(order.status),
        customer=Customer(order.customer_id, order.customer_email, order.customer_name),
        items=tuple(
            OrderItem(i.sku_code, i.name, i.product_name, i.quantity, i.unit_amount, i.amount) for i in items
        ),
        total_amount=order.total_amount,
        currency=order.currency,
        refunded_amount=order.refunded_amount,
        shipping_address=None
        if order.ship_line1 is None
        else PostalAddress(
            name=order.ship_name,
            line1=order.ship_line1,
            line2=order.ship_line2 or "",
            city=order.ship_city,
            region=order.ship_region or "",
            postal_code=order.ship_postal_code,
            country=order.ship_country,
        ),
        created_at=order.created_at,
        paid_at=order.paid_at,
        fulfilled_at=order.fulfilled_at,
        canceled_at=order.canceled_at,
        returned_at=order.returned_at,
        payment=succeeded[-1] if succeeded else (attempts[-1] if attempts else None),
        payment_attempts=attempts,
        refunds=tuple(
            Refund(
                id=r.id,
                amount=r.amount,
                currency=r.currency,
                status=RefundStatus(r.status),
                gateway=r.gateway,
                gateway_refund_id=r.gateway_refund_id,
                action=RefundAction(r.action),
                actor=r.actor,
                failure_code=r.failure_code,
                failure_message=r.failure_message,
                created_at=r.created_at,
            )
            for r in refund_rows
        ),
        events=tuple(
            OrderEvent(
                at=e.at,
                actor=e.actor,
                kind=EventKind(e.action),
                from_status=Status(e.from_status) if e.from_status else None,
                to_status=Status(e.to_status) if e.to_status else None,
                note=e.note or "",
                job_id=e.job_id,
            )
            for e in events
        ),
    )


def _payment(p) -> PaymentAttempt:
    return PaymentAttempt(
        id=p.id,
        gateway=p.gateway,
        gateway_payment_id=p.gateway_payment_id,
        amount=p.amount,
        currency=p.currency,
        status=PaymentStatus(p.status),
        failure_code=p.failure_code,
        failure_message=p.failure_message,
        created_at=p.created_at,
    )
