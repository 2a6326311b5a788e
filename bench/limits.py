"""What limits each figure whose target was missed, from profiling (pyinstrument and
py-spy on the benchmark's own runs, and EXPLAIN QUERY PLAN); attached to the figure
in the results when, and only when, its target was missed. Keep these true: when the
code they describe changes, profile again (see the README's Performance section)."""

from __future__ import annotations


def _export(f) -> str:
    e = f.extra
    direct = (e.get("direct_export_orders") or {}).get("median")
    enqueue = (e.get("enqueue_seconds") or {}).get("median")
    parts = []
    if direct is not None:
        parts.append(
            f"export.export_orders alone takes {direct:.1f} s (1M orders and 1.5M items "
            f"read as Arrow, through ADBC in a helper process on SQLite, joined and "
            f"formatted and written by DuckDB), so {max(0.0, f.value.median - direct):.1f} s "
            f"of the {f.value.median:.1f} s is the job around it"
        )
    if enqueue is not None:
        parts.append(
            f"enqueue freezes one job item per order ({enqueue:.1f} s for 1M), the worker "
            f"then exports by joining those items and marks 1M items done at the end: an "
            f"export job that froze its selection as the filters plus the highest order id "
            f"would cost about what export_orders does"
        )
    parts.append(
        "the pandas baseline writes fewer columns (no items, no formatting), so the "
        "ratio understates the export"
    )
    return "; ".join(parts)


def _fulfill(f) -> str:
    need = 8_000 if f.backend == "sqlite" else 12_000
    base = f.baseline.median if f.baseline else 0
    parts = []
    if f.value.median >= need:
        parts.append(
            f"the rate target is met; the ratio is not, because the ORM loop ran at "
            f"{base:,.0f}/s on this machine (the issue's reference: about 630/s, against "
            f"which this rate is {f.value.median / 630:,.1f}×)"
        )
    else:
        parts.append(f"{f.value.median:,.0f}/s against {need:,}/s")
    if f.backend == "postgresql":
        parts.append(
            "the order_skus trigger (migration 0013) rewrites each moved order's SKU rows in "
            "the same UPDATE statement: about a fifth of that statement's time in EXPLAIN "
            "ANALYZE at 1M (bench/results/r13-pgsku.md)"
        )
        parts.append(
            "one worker is bound by one Python core (CPU time was about two thirds of wall "
            "time in the profile), spread over the guarded UPDATE ... RETURNING (20 %), "
            "freezing the order numbers at enqueue (18 %), the chunk's 500 events (16 %), "
            "the in-flight checks (11 %) and the claim (8 %). Worker processes share a "
            "job through SKIP LOCKED claims, but two of them gained little here: this "
            "machine's two cores also run the PostgreSQL server that does the updates "
            "(see the 2-process row)"
        )
    else:
        parts.append(
            "per 500-order chunk the worker makes about a dozen statements in four "
            "transactions (claim, pending-payment and in-flight checks, the guarded UPDATE "
            "... RETURNING, the 500 events, recording the items), with no single hotspot in "
            "the profile; the UPDATE rewrites each order's entry in the (status, created_at, "
            "total_amount) index, and its order_skus trigger each of the order's SKU rows "
            "(about 13 µs of CPU per order at 1M, bench/results/r13-pgsku.md); a second "
            "worker process shares SQLite's one writer "
            "(see the 2-process row)"
        )
    return "; ".join(parts)


def _cancel(f) -> str:
    if f.backend == "postgresql":
        return (
            "each refund is its own transaction in the simulated gateway's ledger (as Stripe's "
            "books would be): four statements and a commit, each a round trip to the server; the "
            "four refund threads waited on those for 52 % of the wall time in the profile, the "
            "chunk's claim (16 %) and settle (16 %) transactions took most of the rest"
        )
    return (
        "each refund is its own write transaction in the simulated gateway's ledger (as Stripe's "
        "books would be), and SQLite has one writer: the refund threads queue for it (44 % of "
        "the wall time in the profile), then the chunk's claim and settle transactions follow"
    )


def _bundle(f) -> str:
    slowest = ", ".join(f.extra.get("slowest_views", [])[:6])
    common = (
        f"the slowest views of this run: {slowest}. Searches and SKU views now count at most "
        "10,000 matches (their own rows below say what is left); "
    )
    return common + (
        "SKU views read order_skus and a page sorted by status reads each status along the "
        "order ids (each about 10 ms at 1M on PostgreSQL; bench/results/r13-pgsku.md), so "
        "what is left above 100 ms are searches and amounts; "
        "the views counted exactly without a summary are the amount filters (one COUNT(*) per "
        "status over a range of the covering (status, created_at, total_amount) index, about "
        "100 ns per entry on SQLite) and the searches under the count limit, whose count visits "
        "every text-index candidate and its order (a surname over the last 30 days: all "
        "30,000 candidates of the surname)"
    )


def _view(f) -> str:
    view = f.extra.get("view", "")
    if f.key.startswith("search_number"):
        return (
            "the order is one primary-key look-up (about 0.1 ms); the rest is the bundle around "
            "it: the permission check and the tab counts' query, each a round trip, on a "
            "machine whose load average was far above its two cores"
        )
    if f.key.startswith("search_selective"):
        if f.backend == "postgresql":
            return (
                f"{view}: about 5,000 orders match, under the count limit, so they are counted "
                "exactly: pg_trgm finds them in about 9 ms (asked for the part before the '@'), "
                "then the count reads their 4,500 heap pages (77 of the count's 88 ms in EXPLAIN "
                "ANALYZE); the page walks ix_orders_created in about 10 ms"
            )
        return (
            f"{view}: about 5,000 orders match, under the count limit, so they are counted "
            "exactly: FTS5 finds them in about 19 ms (asked for the part before the '@'), then "
            "each is looked up in orders for its status and the LIKE; the page looks the same "
            "candidates up again and sorts them"
        )
    return (
        f"{view}: over the count limit, so the counts stop at 10,001 matches (the first "
        "10,001 of the text index joined to their orders on SQLite, a bitmap scan that stops "
        "at the limit on PostgreSQL), done twice (the tabs, then the list's total); the page "
        "walks ix_orders_created and stops after 50 matches (under 1 ms)"
    )


def _sku(f) -> str:
    views = f.extra.get("views", {})
    slow = ", ".join(f"{k}: {v:,.0f} ms" for k, v in sorted(views.items(), key=lambda kv: -kv[1])[:3])
    return (
        f"the slowest: {slow}. Each SKU view reads order_skus (migration 0013: each order's "
        "SKUs keyed (sku, status, created_at, order_id), the order's total and currency "
        "alongside): the tabs are the SKU's first 10,001 rows of that key (with dates, each "
        "status's range up to 10,001, which the list's total then reuses), the page walks "
        "the key backwards and joins 50 orders by id; an amount is tested in the same rows "
        "(on PostgreSQL an index-only scan, INCLUDE). What is left is reading up to 10,001 "
        "index entries per range and the round trips of the bundle (the SKU's id, the "
        "tabs, the total, the page), on a machine far busier than its two cores"
    )


def _checkout(f) -> str:
    trips = f.extra.get("round_trips")
    return (
        f"{f.value.median:,.0f}/s: one checkout is {trips} round trips of ours plus the simulated "
        "gateway's two ledger transactions (each a ping, BEGIN, three or four statements and "
        "a COMMIT); in a profile of 200 checkouts (a 20,000-order database, load average "
        "about 6) the process spent about a third of the wall time on CPU and the rest "
        "waiting on the server, which shares the two cores; the crash-safety rule keeps "
        "three of our commits (the pending "
        "payment before the gateway, its id between create and confirm, the paid move). "
        "Cutting 6 pooled connections (each a ping) to 3 and one statement gained nothing "
        "measurable: interleaved with main's code on a 2,000-order database (150 checkouts "
        "× 3, twice each) both ran at 34–61/s, the spread of the machine's load"
    )


LIMITS = {
    "orders_page_bundle": _bundle,
    "search_number": _view,
    "search_selective": _view,
    "search_broad": _view,
    "sku_views": _sku,
    "checkout": _checkout,
    "export": _export,
    "bulk_fulfill": _fulfill,
    "bulk_fulfill_2p": _fulfill,
    "bulk_cancel": _cancel,
    "rate_limiter": lambda f: (
        "the limiter never let more than the limit through; at a limit near the engine's own "
        "speed the worker makes no gateway requests while it records one chunk and claims "
        "the next, so the rate drops below the limit then"
    ),
    "seed": lambda f: (
        "demo.seed writes 1M orders, 1.5M items, 2.7M events, 0.9M payments and 0.2M refunds "
        "plus the gateway ledger and all their indexes; the write floor beside it (bare rows, "
        "no index) shows how much of the run was this machine's load at the time"
    ),
    "dashboard_rerun": lambda f: "the page's rerun runs the same tab counts as #1 (see #1)",
}


def attach(figures) -> None:
    for figure in figures:
        figure.limits = ""
        if figure.met is False:
            explain = LIMITS.get(figure.key.split(".")[0])
            figure.limits = explain(figure) if explain else ""
