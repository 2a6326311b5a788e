"""#1 The orders page's query bundle over 50 varied views (target at 1M orders on
SQLite: p95 ≤ 100 ms).

The bundle is what pages/orders_page.py asks for on every run: the tab counts
(queries.tab_counts under the filters: a search or SKU view counts up to
queries.COUNT_LIMIT matches, "10,000+" above), then one page of rows sorted as asked
with the total count (queries.list_orders with the same count_limit). Each repeat times every view once, after
one untimed warm-up pass; the figure is the 95th percentile over the 50 views, and its
median, min and max over the repeats. Baseline, same run, same views: the bundle as
first written (bench/baselines.py:v1_bundle).

From the same passes, rows of their own for the views the issue names: an order
number, a selective customer search (a whole email), a broad one (a domain, a fifth of
all orders), the SKU views (their p95); and the exact count on demand of the broad
search (queries.tab_counts with limit=None), timed apart."""

from __future__ import annotations

import time

from orders_core import queries
from orders_core.staff import SYSTEM

from . import baselines
from .common import Figure, Stats, log, percentile
from .views import View, build_views

TARGET_P95_MS = 100.0


def page_size() -> int:
    try:
        from pages.ui.orders_view import PAGE_SIZE

        return int(PAGE_SIZE)
    except Exception:  # noqa: BLE001 - streamlit missing, or the page moved
        return 50


def current_bundle(db, view: View, size: int):
    counts = queries.tab_counts(db, view.filters, actor=SYSTEM)
    page = queries.list_orders(
        db,
        view.filters,
        actor=SYSTEM,
        page=view.page,
        page_size=size,
        sort=view.sort,
        descending=view.descending,
        count_limit=queries.COUNT_LIMIT,
        tabs=counts,
    )
    return counts, page


SEARCH_NUMBER = "search: an order number"
SEARCH_SELECTIVE = "search: a whole email"
SEARCH_BROAD = "search: a domain"


def baseline_bundle(db, view: View, size: int):
    return baselines.v1_bundle(
        db, view.filters, sort=view.sort, descending=view.descending, page=view.page, page_size=size
    )


def _pass(db, views: list[View], bundle, size: int) -> dict[str, float]:
    times = {}
    for view in views:
        start = time.perf_counter()
        bundle(db, view, size)
        times[view.name] = (time.perf_counter() - start) * 1000
    return times


def check_same_answers(db, views: list[View], size: int) -> None:
    """The optimised bundle must answer what the first version did: the same rows, and
    the same counts, or (over the count limit) a true lower bound of them."""
    for view in views:
        counts, page = current_bundle(db, view, size)
        tabs, v1_rows, v1_total = baseline_bundle(db, view, size)
        same_rows = [r["id"] for r in page.rows] == [r.id for r in v1_rows]
        if counts.exact:
            same_counts = counts.counts == tabs
        else:
            same_counts = counts.counts["all"] <= tabs["all"] and counts.counts["all"] == counts.limit
        same_total = page.total == v1_total if page.total_exact else page.total <= v1_total
        if not (same_rows and same_counts and same_total):
            raise AssertionError(
                f"view {view.name!r}: the bundle differs from the first version "
                f"({counts} vs {tabs}; total {page.total_label} vs {v1_total})"
            )


def exact_count_ms(db, view: View) -> float:
    start = time.perf_counter()
    queries.tab_counts(db, view.filters, actor=SYSTEM, limit=None)
    return (time.perf_counter() - start) * 1000


def run(db, backend: str, *, repeat: int, orders: int) -> list[Figure]:
    views = build_views(db)
    size = page_size()
    log(f"queries: checking the answers of {len(views)} views against the first version")
    check_same_answers(db, views, size)  # also the warm-up pass
    current, base, sku_p95, sku_base = [], [], [], []
    sku_views = [v.name for v in views if v.filters.sku]
    broad = next(v for v in views if v.name == SEARCH_BROAD)
    exact_ms = []
    per_view: dict[str, list[float]] = {v.name: [] for v in views}
    base_view: dict[str, list[float]] = {v.name: [] for v in views}
    for i in range(repeat):
        times = _pass(db, views, current_bundle, size)
        for k, v in times.items():
            per_view[k].append(v)
        current.append(percentile(list(times.values()), 95))
        sku_p95.append(percentile([times[k] for k in sku_views], 95))
        exact_ms.append(exact_count_ms(db, broad))
        times = _pass(db, views, baseline_bundle, size)
        for k, v in times.items():
            base_view[k].append(v)
        base.append(percentile(list(times.values()), 95))
        sku_base.append(percentile([times[k] for k in sku_views], 95))
        log(f"queries: repeat {i + 1}/{repeat}: p95 {current[-1]:.1f} ms (first version {base[-1]:.1f} ms)")
    medians = sorted(((sorted(v)[len(v) // 2], k) for k, v in per_view.items()), reverse=True)
    value = Stats.of(current, "ms")
    target = orders >= 1_000_000
    bundle = Figure(
        key=f"orders_page_bundle.{backend}",
        title=f"Orders page query bundle, p95 of 50 views ({orders:,} orders)",
        backend=backend,
        value=value,
        better="lower",
        baseline=Stats.of(base, "ms"),
        baseline_title="first version of the queries",
        target="p95 ≤ 100 ms",
        met=(value.median <= TARGET_P95_MS) if target else None,
        extra={
            "page_size": size,
            "median_ms_by_view": {k: round(sorted(v)[len(v) // 2], 2) for k, v in per_view.items()},
            "baseline_median_ms_by_view": {k: round(sorted(v)[len(v) // 2], 2) for k, v in base_view.items()},
            "slowest_views": [f"{k}: {m:.1f} ms" for m, k in medians[:8]],
            "p50_ms": round(percentile([sorted(v)[len(v) // 2] for v in per_view.values()], 50), 2),
        },
    )
    counts = queries.tab_counts(db, broad.filters, actor=SYSTEM)
    bundle.extra["broad_search_counts"] = counts.label("all")

    number_view = next(v for v in views if v.name == SEARCH_NUMBER)
    lookups = []
    for _ in range(max(5, repeat)):  # the order itself, without the tabs and the total
        start = time.perf_counter()
        queries.list_orders(db, number_view.filters, actor=SYSTEM, page_size=size, with_total=False)
        lookups.append((time.perf_counter() - start) * 1000)

    def view_figure(key: str, name: str, title: str, limit_ms: float) -> Figure:
        stats = Stats.of(per_view[name], "ms")
        return Figure(
            key=f"{key}.{backend}",
            title=f"{title} ({orders:,} orders)",
            backend=backend,
            value=stats,
            better="lower",
            baseline=Stats.of(base_view[name], "ms"),
            baseline_title="first version of the queries, same view",
            target=f"≤ {limit_ms:g} ms",
            met=(stats.median <= limit_ms) if target else None,
            extra={"view": name},
        )

    sku = Stats.of(sku_p95, "ms")
    by_number = view_figure("search_number", SEARCH_NUMBER, "Search by order number: first page + counts", 5)
    lookup = sorted(lookups)[len(lookups) // 2]
    by_number.extra["lookup_ms"] = round(lookup, 2)
    by_number.notes = (
        f"the look-up alone (list_orders without the tabs and the total): {lookup:.1f} ms median "
        f"of {len(lookups)}"
    )
    return [
        bundle,
        by_number,
        view_figure(
            "search_selective",
            SEARCH_SELECTIVE,
            "Selective customer search (a whole email): page + counts",
            50,
        ),
        view_figure(
            "search_broad",
            SEARCH_BROAD,
            f"Broad customer search (a domain, {counts.label('all')} counted): page + counts",
            100,
        ),
        Figure(
            key=f"sku_views.{backend}",
            title=f"SKU views and SKU + status views, p95 of {len(sku_views)} ({orders:,} orders)",
            backend=backend,
            value=sku,
            better="lower",
            baseline=Stats.of(sku_base, "ms"),
            baseline_title="first version of the queries, same views",
            target="p95 ≤ 100 ms",
            met=(sku.median <= 100) if target else None,
            extra={"views": {k: round(sorted(per_view[k])[len(per_view[k]) // 2], 2) for k in sku_views}},
        ),
        Figure(
            key=f"search_exact_count.{backend}",
            title=f"Broad search: exact tab counts on demand (Count exactly; {orders:,} orders)",
            backend=backend,
            value=Stats.of(exact_ms, "ms"),
            better="lower",
        ),
    ]
