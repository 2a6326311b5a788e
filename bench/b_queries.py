"""#1 The orders page's query bundle over 50 varied views (target at 1M orders on
SQLite: p95 ≤ 100 ms).

The bundle is what pages/orders_page.py asks for on every run: the tab counts
(queries.count_by_status under the filters), then one page of rows sorted as asked
with the total count (queries.list_orders). Each repeat times every view once, after
one untimed warm-up pass; the figure is the 95th percentile over the 50 views, and its
median, min and max over the repeats. Baseline, same run, same views: the bundle as
first written (bench/baselines.py:v1_bundle)."""

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
    counts = queries.count_by_status(db, view.filters, actor=SYSTEM)
    page = queries.list_orders(
        db,
        view.filters,
        actor=SYSTEM,
        page=view.page,
        page_size=size,
        sort=view.sort,
        descending=view.descending,
    )
    return counts, page.rows, page.total


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
    """The optimised bundle must answer exactly what the first version did."""
    for view in views:
        counts, rows, total = current_bundle(db, view, size)
        tabs, v1_rows, v1_total = baseline_bundle(db, view, size)
        if counts != tabs or total != v1_total or [r["id"] for r in rows] != [r.id for r in v1_rows]:
            raise AssertionError(
                f"view {view.name!r}: the bundle differs from the first version "
                f"({counts} vs {tabs}; total {total} vs {v1_total})"
            )


def run(db, backend: str, *, repeat: int, orders: int) -> Figure:
    views = build_views(db)
    size = page_size()
    log(f"queries: checking the answers of {len(views)} views against the first version")
    check_same_answers(db, views, size)  # also the warm-up pass
    current, base = [], []
    per_view: dict[str, list[float]] = {v.name: [] for v in views}
    base_view: dict[str, list[float]] = {v.name: [] for v in views}
    for i in range(repeat):
        times = _pass(db, views, current_bundle, size)
        for k, v in times.items():
            per_view[k].append(v)
        current.append(percentile(list(times.values()), 95))
        times = _pass(db, views, baseline_bundle, size)
        for k, v in times.items():
            base_view[k].append(v)
        base.append(percentile(list(times.values()), 95))
        log(f"queries: repeat {i + 1}/{repeat}: p95 {current[-1]:.1f} ms (first version {base[-1]:.1f} ms)")
    medians = sorted(((sorted(v)[len(v) // 2], k) for k, v in per_view.items()), reverse=True)
    value = Stats.of(current, "ms")
    target = backend == "sqlite" and orders >= 1_000_000
    return Figure(
        key=f"orders_page_bundle.{backend}",
        title=f"Orders page query bundle, p95 of 50 views ({orders:,} orders)",
        backend=backend,
        value=value,
        better="lower",
        baseline=Stats.of(base, "ms"),
        baseline_title="first version of the queries",
        target="p95 ≤ 100 ms" if backend == "sqlite" else "",
        met=(value.median <= TARGET_P95_MS) if target else None,
        extra={
            "page_size": size,
            "median_ms_by_view": {k: round(sorted(v)[len(v) // 2], 2) for k, v in per_view.items()},
            "baseline_median_ms_by_view": {k: round(sorted(v)[len(v) // 2], 2) for k, v in base_view.items()},
            "slowest_views": [f"{k}: {m:.1f} ms" for m, k in medians[:8]],
            "p50_ms": round(percentile([sorted(v)[len(v) // 2] for v in per_view.values()], 50), 2),
        },
    )
