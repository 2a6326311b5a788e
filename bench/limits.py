"""What limits each figure whose target was missed, from profiling (pyinstrument and
py-spy on the benchmark's own runs, and EXPLAIN QUERY PLAN); attached to the figure
in the results when, and only when, its target was missed. Keep these true: when the
code they describe changes, profile again (see the README's Performance section)."""
from __future__ import annotations

LIMITS = {
    "orders_page_bundle": (
        "counting, not the page (a page of 50 from the right index takes about 1 ms). Of the 50 "
        "views, those without a date range count all 1,000,000 orders per tab: five COUNT(*) "
        "over the covering (status, created_at, total_amount) index, 90–165 ms together on this "
        "machine (about 100 ns per entry; a GROUP BY costs more). A search is a LIKE on every "
        "order's email and name (a table scan of 1–2 s, an order number too, because it is "
        "OR'ed with the text); a SKU looks up every order that has it (up to 160,000: 0.4–1.5 s). "
        "Measured but not made, as they change the write path: a per-day × status × currency "
        "count table answers every date-only or unfiltered view's counts in about 1 ms instead "
        "of 90–165 ms (python -m bench.experiments.summary_table), and an FTS5 trigram index on "
        "email and name in front of the same LIKE takes a customer's search from 1–2 s to about "
        "0.1 s (a domain, matching a fifth of all orders, still about 1.2 s)"),
    "export": (
        "export.export_orders itself takes most of it (see direct_export_orders in the JSON): "
        "1M orders and 1.5M items read through ADBC in a helper process, joined, formatted and "
        "written by DuckDB; the job adds freezing one job item per order at enqueue (about 2 s "
        "for 1M) and marking 1M items done at the end. The pandas baseline writes fewer "
        "columns (no items, no formatting), so its ratio understates the export's speed"),
    "bulk_fulfill": (
        "per 500-order chunk the worker makes about a dozen statements in four transactions "
        "(claim, pending-payment and in-flight checks, the guarded UPDATE ... RETURNING, the "
        "500 events, recording the items); the UPDATE rewrites each order's entry in the "
        "(status, created_at, total_amount) index. No single hotspot in the profile; on this "
        "shared machine the process gets well under one core (CPU time was a fifth to a half "
        "of wall time in profiles). The ORM baseline gains from the same idle cores, so the "
        "ratio moves less than the rate"),
    "bulk_cancel": (
        "each refund is its own write transaction in the simulated gateway's ledger (as "
        "Stripe's books would be), and SQLite has one writer: the refund threads queue for "
        "it (44 % of the wall time in the profile), then the chunk's claim and settle "
        "transactions follow"),
    "rate_limiter": (
        "the limiter never let more than the limit through; at a limit near the engine's own "
        "speed the worker makes no gateway requests while it records one chunk and claims "
        "the next, so the rate drops below the limit then"),
    "seed": (
        "demo.seed writes 1M orders, 1.5M items, 2.7M events, 0.9M payments and 0.2M refunds "
        "plus the gateway ledger and all their indexes; the write floor beside it (bare rows, "
        "no index) shows how much of the run was this machine's load at the time"),
    "dashboard_rerun": (
        "the page's rerun runs the same count_by_status as #1 for its tabs (see #1)"),
}


def attach(figures) -> None:
    for figure in figures:
        if figure.met is False and not figure.limits:
            figure.limits = LIMITS.get(figure.key.split(".")[0], "")
