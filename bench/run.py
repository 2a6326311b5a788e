"""The benchmarks: python -m bench.run [--orders N] [--repeat K] [--only NAME ...]

Builds (or reuses) a database of N orders through orders_core.demo.seed, on SQLite,
and on PostgreSQL too when ORDERS_DATABASE_URL names one; measures; writes the
results as JSON (default bench/results/latest.json for a full run at 1M orders,
bench/work/last-run.json otherwise) and prints a markdown table.

Measurements (--only takes these names): queries, dashboard, export, fulfill, cancel,
checkout, seed, underload. See each bench/b_*.py for exactly what is timed and against which
baseline. Every figure is the median, min and max of --repeat runs, beside a
baseline measured in the same process on the same data."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from .common import RESULTS_DIR, WORK_DIR, Figure, log, machine_info, markdown_table

NAMES = ("queries", "dashboard", "export", "fulfill", "cancel", "checkout", "seed", "underload")
FULL_SIZE = 1_000_000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=FULL_SIZE, help="orders in the database")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument(
        "--seed-repeat", type=int, default=1, help="seeds to time (one is the cache build when it happens)"
    )
    parser.add_argument("--random-seed", type=int, default=1)
    parser.add_argument(
        "--only", nargs="+", choices=NAMES, metavar="NAME", help=f"only these: {', '.join(NAMES)}"
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "sqlite", "postgresql"),
        default="auto",
        help="auto: SQLite, plus PostgreSQL when ORDERS_DATABASE_URL names one",
    )
    parser.add_argument(
        "--underload-clients",
        type=int,
        default=4,
        help="underload: signed-in people (Chromium pages) clicking at once (default 4)",
    )
    parser.add_argument(
        "--underload-seconds",
        type=float,
        default=60.0,
        help="underload: how long they click with no job running (default 60)",
    )
    parser.add_argument("--out", type=Path, help="where to write the JSON results")
    parser.add_argument(
        "--work-dir", type=Path, default=WORK_DIR, help="cached databases and scratch files (git-ignored)"
    )
    parser.add_argument("--rebuild", action="store_true", help="seed again even if cached")
    parser.add_argument(
        "--throwaway-postgres",
        action="store_true",
        help="start the test suite's throwaway PostgreSQL 15 server "
        "(tests/support/postgres.py: durability off) for this run and "
        "measure on it too",
    )
    parser.add_argument(
        "--retable",
        action="store_true",
        help="measure nothing: rewrite the table (and what limits each missed "
        "target, from bench/limits.py) of the results in --out",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the figures already in --out (default, at 1M orders: "
        "bench/results/latest.json) that this run does not measure",
    )
    return parser.parse_args(argv)


def _environment(work_dir: Path) -> None:
    os.environ.setdefault("ORDERS_DATA_DIR", str(work_dir / "data"))
    os.environ["ORDERS_EMBEDDED_WORKER"] = "0"
    os.environ["ORDERS_PAYMENT_GATEWAY"] = "simulated"


def run_backend(backend: str, args, wanted: set[str], figures: list[Figure], errors: list) -> None:
    from . import b_bulk, b_checkout, b_dashboard, b_export, b_queries, b_seed
    from . import dataset as ds

    def attempt(name: str, call):
        try:
            result = call()
        except Exception as error:  # noqa: BLE001 - recorded; the other measurements go on
            log(f"{name} ({backend}) FAILED: {type(error).__name__}: {error}")
            traceback.print_exc()
            errors.append({"name": name, "backend": backend, "error": f"{type(error).__name__}: {error}"})
            return None
        if isinstance(result, Figure):
            figures.append(result)
        elif isinstance(result, list):
            figures.extend(result)
        return result

    n, repeat = args.orders, max(1, args.repeat)
    if backend == "sqlite":
        data = ds.sqlite_dataset(n, args.random_seed, work_dir=args.work_dir, rebuild=args.rebuild)
    else:
        data = ds.postgres_dataset(ds.postgres_url(), n, args.random_seed, rebuild=args.rebuild)
    db = data.open()
    if "queries" in wanted:
        log(f"== #1 orders page query bundle ({backend})")
        attempt("queries", lambda: b_queries.run(db, backend, repeat=repeat, orders=n))
    if "dashboard" in wanted:
        log(f"== #7 orders page rerun ({backend})")
        attempt("dashboard", lambda: b_dashboard.run(data.url, backend, repeat=repeat, orders=n))

    if wanted & {"export", "fulfill", "cancel", "checkout"}:
        scratch = ds.scratch(data, "work")
        try:
            work = ds.orders_db.open_database(scratch)
            if "export" in wanted:
                log(f"== #2 export ({backend})")
                export = attempt(
                    "export", lambda: b_export.run(work, backend, scratch, repeat=repeat, orders=n)
                )
                if export is not None:
                    figures.append(b_export.memory_figure(export))
                    attempt("export", lambda: b_export.wal_figure(work, orders=n))
            sizes = b_bulk.Sizes.for_orders(n)
            paid = b_bulk.paid_orders(work) if wanted & {"fulfill", "cancel"} else []
            if "fulfill" in wanted:
                log(f"== #3 bulk fulfill ({backend})")
                attempt(
                    "fulfill",
                    lambda: b_bulk.fulfill(
                        work, backend, repeat=repeat, orders_total=n, sizes=sizes, paid=paid
                    ),
                )
                attempt(
                    "fulfill",
                    lambda: b_bulk.fulfill_processes(
                        work,
                        scratch,
                        backend,
                        repeat=repeat,
                        orders_total=n,
                        sizes=sizes,
                        paid=paid,
                        processes=2,
                    ),
                )
            if "cancel" in wanted:
                log(f"== #4 bulk cancel and the rate limiter ({backend})")
                attempt(
                    "cancel",
                    lambda: b_bulk.cancel(
                        work, backend, repeat=repeat, orders_total=n, sizes=sizes, paid=paid
                    ),
                )
            if "checkout" in wanted:
                log(f"== #5 checkout ({backend})")
                attempt("checkout", lambda: b_checkout.run(work, backend, repeat=repeat, orders=n))
        finally:
            ds.drop_scratch(scratch)
    if "underload" in wanted:
        from . import b_under_load

        log(f"== #8 under load ({backend})")
        scratch = ds.scratch(data, "underload")
        try:
            attempt(
                "underload",
                lambda: b_under_load.run(
                    scratch,
                    backend,
                    orders_total=n,
                    clients=max(1, args.underload_clients),
                    seconds=max(1.0, args.underload_seconds),
                ),
            )
        finally:
            ds.drop_scratch(scratch)
    if "seed" in wanted:
        log(f"== #6 seeding ({backend})")
        ds.forget(data.url)
        attempt("seed", lambda: b_seed.run(data, repeat=max(1, args.seed_repeat), orders=n))


ORDER = (
    "orders_page_bundle",
    "search_number",
    "search_selective",
    "search_broad",
    "search_exact_count",
    "sku_views",
    "export",
    "export_memory",
    "export_wal",
    "bulk_fulfill",
    "bulk_fulfill_2p",
    "bulk_cancel",
    "rate_limiter",
    "checkout",
    "checkout_round_trips",
    "seed",
    "dashboard_rerun",
    "dashboard_rows",
    "under_load_tab",
    "under_load_search_number",
    "under_load_search_email",
    "under_load_search_surname",
    "under_load_clear",
    "under_load_job",
    "under_load_wal",
)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.throwaway_postgres and not os.environ.get("ORDERS_DATABASE_URL"):
        from tests.support import postgres as pg

        with pg.running_postgres() as base:
            os.environ["ORDERS_DATABASE_URL"] = pg.url_for_database(base, "orders")
            os.environ["BENCH_POSTGRES_SETTINGS"] = json.dumps(pg.SERVER_SETTINGS)
            try:
                return _main(args, argv)
            finally:
                os.environ.pop("ORDERS_DATABASE_URL", None)
    return _main(args, argv)


def retable(out: Path) -> int:
    from .limits import attach

    results = json.loads(out.read_text())
    figures = [Figure.from_dict(f) for f in results["figures"]]
    attach(figures)
    results["figures"] = [f.as_dict() for f in figures]
    results["table"] = markdown_table(figures)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(results["table"] + "\n")
    print(results["table"])
    return 0


def _main(args, argv) -> int:
    if args.retable:
        return retable(args.out or RESULTS_DIR / "latest.json")
    args.work_dir = args.work_dir.resolve()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    _environment(args.work_dir)
    from . import dataset as ds

    wanted = set(args.only or NAMES)
    backends = ["sqlite"]
    if args.backend == "postgresql" or (args.backend == "auto" and ds.postgres_url()):
        if not ds.postgres_url():
            print("--backend postgresql needs ORDERS_DATABASE_URL=postgresql+psycopg://...", file=sys.stderr)
            return 2
        backends = ["postgresql"] if args.backend == "postgresql" else ["sqlite", "postgresql"]
    figures: list[Figure] = []
    errors: list[dict] = []
    load_start = os.getloadavg()
    log(
        f"orders {args.orders:,}, repeat {args.repeat}, backends {', '.join(backends)}, "
        f"measuring {', '.join(n for n in NAMES if n in wanted)}"
    )
    for backend in backends:
        run_backend(backend, args, wanted, figures, errors)

    from orders_core.config import load_settings

    settings = load_settings()
    meta = machine_info()
    meta.update(
        {
            "orders": args.orders,
            "repeat": args.repeat,
            "random_seed": args.random_seed,
            "backends": backends,
            "measured": sorted(wanted),
            "settings": {
                "job_chunk_size": settings.job_chunk_size,
                "refund_concurrency": settings.refund_concurrency,
            },
            "migration": ds.head_revision(),
            "postgres_server_settings": json.loads(os.environ.get("BENCH_POSTGRES_SETTINGS", "null")),
            # Other work on this shared machine while it ran (1, 5, 15 minutes).
            "load_average": {
                "start": [round(x, 1) for x in load_start],
                "end": [round(x, 1) for x in os.getloadavg()],
            },
            "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        }
    )
    out = args.out
    if out is None:
        full = args.orders == FULL_SIZE and (not args.only or args.merge)
        out = RESULTS_DIR / "latest.json" if full else args.work_dir / "last-run.json"
    if args.merge and out.exists():
        earlier = json.loads(out.read_text())
        fresh = {f.key for f in figures}
        kept = [Figure.from_dict(f) for f in earlier["figures"] if f["key"] not in fresh]
        figures = kept + figures
        errors = [
            e for e in earlier.get("errors", []) if not (e["backend"] in backends and e["name"] in wanted)
        ] + errors
        meta = dict(
            earlier["meta"],
            **{k: v for k, v in meta.items() if k != "backends"},
            backends=sorted(set(earlier["meta"].get("backends", [])) | set(backends)),
            runs=earlier["meta"].get("runs", [earlier["meta"].get("command")]) + [meta["command"]],
        )
    figures.sort(
        key=lambda f: (
            ORDER.index(f.key.split(".")[0]) if f.key.split(".")[0] in ORDER else 99,
            f.backend != "sqlite",
        )
    )
    from .limits import attach

    attach(figures)
    table = markdown_table(figures)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"meta": meta, "figures": [f.as_dict() for f in figures], "errors": errors, "table": table},
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    out.with_suffix(".md").write_text(table + "\n")
    print()
    print(table)
    print()
    log(f"results: {out}")
    if errors:
        log(
            f"{len(errors)} measurement(s) failed: "
            + ", ".join(f"{e['name']} ({e['backend']})" for e in errors)
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
