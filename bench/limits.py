"""What limits each figure whose target was missed, from profiling (pyinstrument and
py-spy on the benchmark's own runs, and EXPLAIN QUERY PLAN); attached to the figure
in the results when, and only when, its target was missed. Keep these true: when the
code they describe changes, profile again (see the README's Performance section)."""

from __future__ import annotations


def _export(f) -> str:
    e = f.extra
    direct = (e.get("direct_export_orders") or {}).get("median")
    parts = []
    if direct is not None:
        parts.append(
            f"export.export_orders alone takes {direct:.1f} s, so "
            f"{max(0.0, f.value.median - direct):.1f} s of the {f.value.median:.1f} s is the "
            f"job around it (enqueue: max(id) and a count; progress writes)"
        )
    parts.append(
        "export_orders is CPU-bound: at 1M on SQLite about 4.3 s of CPU in the ADBC helper "
        "(profile, bench/results/r13-export2.md): SQLite producing the rows 2.0 s (orders 1.5 s, "
        "of which the seven shipping-address columns 0.6 s; items 0.4 s), DuckDB formatting and "
        "writing 234 MB 1.4-2 s (0.7 s of it plain CSV writing), the join 0.2 s. Two worker "
        "threads each read, join and write whole ranges of 65,536 ids, so the wall time is about "
        "half the CPU time only when both cores are free; on a loaded machine it is the CPU "
        "time or more"
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
            "the worker's own CPU is small now (a set-based chunk is one statement: claim, "
            "guarded UPDATE ... RETURNING, events and item record; 20,000 orders cost 0.3-0.6 s "
            "of client CPU against 2.0 s before, bench/results/r13-pgbulk.md); what is left is "
            "the server's CPU, about 90-100 µs per order on this shared machine, most of it "
            "the UPDATE of orders: a status change is never a HOT update, so each order gets "
            "a new row version and an entry in each of the table's 11 indexes (two of them "
            "pg_trgm GIN), then the item's UPDATE (4 indexes), the order_day_counts "
            "statement trigger, the order_skus trigger "
            "(migration 0013: each moved order's SKU rows, about a fifth of the UPDATE's time "
            "in EXPLAIN ANALYZE at 1M, bench/results/r13-pgsku.md) and the event's "
            "foreign-key check. ORDERS_JOB_MOVE_CONCURRENCY "
            "(2) keeps two chunks in flight per worker so the server uses both cores; on "
            "these two cores the server competes with the worker and the bench itself"
        )
    else:
        parts.append(
            "a set-based chunk is one write transaction of seven statements (the claim, the "
            "items that can move, their events as one INSERT ... SELECT, the guarded UPDATE, "
            "the job's count), with no Python object per order; what is left is SQLite's own "
            "work: each order's row and its entries in the (status, created_at, total_amount) "
            "and (currency, status, ...) indexes, the day-count trigger per row, the event row "
            "and the item's row, and the order_skus trigger's "
            "rewrite of each order's SKU rows (about 13 µs of CPU per order at 1M, "
            "bench/results/r13-pgsku.md); a second worker process shares SQLite's one writer "
            "(see the 2-process row)"
        )
    return "; ".join(parts)


def _cancel(f) -> str:
    if f.backend == "postgresql":
        return (
            "each refund is one statement at the simulated gateway now (its common answer, the "
            "refund and its idempotency key together, in autocommit: one round trip, was a ping, "
            "BEGIN, five statements and a COMMIT), so a 500-order chunk is about 1.2 round trips "
            "per order (2.4 at 50 per chunk: ~60 fixed per chunk); what is left is the chunk's "
            "claim and settle transactions (the orders locked, in-flight checks, the refund rows "
            "inserted, the 500 refund rows and orders updated, the events) and one Python core: "
            "interleaved A/B runs against main on a 200,000-order database measured 1.5-2.5x "
            "main's rate on a machine with a load average of 13-21 (bench/results/r13-pgwrites.md)"
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
        f"{f.value.median:,.0f}/s: one checkout is {trips} round trips on the wire, the "
        "simulated gateway's included (39 before issue #13 §4): the gateway's create and "
        "confirm one statement each; the order, its items, its event and its pending payment "
        "one transaction of 6 statements (the crash-safety rule: committed before the gateway "
        "is called); the gateway's payment id and the paid move one statement each in "
        "autocommit; the order detail's 5 SELECTs. Left to cut: the order detail (one "
        "statement instead of five) and the first transaction as one INSERT ... RETURNING "
        "chain (psycopg's pipeline mode or CTEs); in a profile the process spent 10-20 % of "
        "the wall time on CPU on this loaded machine, the rest waiting on the server, which "
        "shares the two cores"
    )


def _cpu_words(cpu: dict, seconds: float) -> str:
    names = {
        "server": "the Streamlit server",
        "worker": "its worker process",
        "browser": "the Chromium pages",
    }
    parts = [
        f"{label} {cpu.get(kind, 0):.0f} CPU-s ({cpu.get(kind, 0) / seconds * 100:.0f} % of a core)"
        for kind, label in names.items()
        if seconds > 0
    ]
    return ", ".join(parts)


def _under_load_action(f) -> str:
    e = f.extra
    under = e.get("with_job", {})
    seconds = (e.get("phase_seconds") or {}).get("with_job") or 0
    cpu = (e.get("cpu_seconds") or {}).get("with_job") or {}
    load = e.get("load_average")
    parts = [f"p95 {f.value.median:,.0f} ms with the job"]
    if f.baseline is not None:
        parts[0] += f" (p95 {f.baseline.median:,.0f} ms without)"
    if "run_p95_ms" in under:
        parts.append(
            f"of which the click until the server's rerun finished: p50 {under['run_p50_ms']:,.0f} / p95 "
            f"{under['run_p95_ms']:,.0f} ms (the rest is the browser drawing the page)"
        )
    if cpu and seconds:
        parts.append(f"over the {seconds:.0f} s with the job: " + _cpu_words(cpu, seconds))
    if load:
        parts.append(f"load average {load[0]:.0f} on two cores at the end")
    parts.append(UNDER_LOAD_WHY)
    return "; ".join(parts)


# From the 1M runs of bench/results/r13-underload.md (CPU accounted there per process).
UNDER_LOAD_WHY = (
    "every click reruns the whole orders page script in the server's one process (frame, "
    "session check, tab counts, the page's rows, the grid's frame: about 160 ms of server CPU "
    "an action at 1M without the job, 240 ms with it) and the Chromium page draws it again "
    "(about 550 ms of CPU, on the same two cores: a real user's browser would not be); the "
    "database part of a search is milliseconds (the search rows above), so an action's time is "
    "mostly waiting for a core on a machine loaded far beyond its two"
)


def _under_load_job(f) -> str:
    e = f.extra
    phases = e.get("phases", {})
    loaded, quiet = phases.get("users_with_job", {}), phases.get("job_alone", {})
    parts = [f"{e.get('ratio', 0) * 100:.0f} % of its rate alone"]
    if loaded.get("cpu_seconds") and loaded.get("seconds"):
        parts.append(
            f"with the people ({loaded['seconds']:.0f} s): "
            + _cpu_words(loaded["cpu_seconds"], loaded["seconds"])
        )
    if quiet.get("cpu_seconds") and quiet.get("seconds"):
        parts.append(
            f"alone ({quiet['seconds']:.0f} s): " + _cpu_words(quiet["cpu_seconds"], quiet["seconds"])
        )
    parts.append(
        "the worker is its own process, so it competes with the server and the browsers for "
        "the two cores only: its share of a core with the people beside alone is what the ratio shows"
    )
    return "; ".join(parts)


LIMITS = {
    "under_load_tab": _under_load_action,
    "under_load_search_number": _under_load_action,
    "under_load_search_email": _under_load_action,
    "under_load_search_surname": _under_load_action,
    "under_load_job": _under_load_job,
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
