"""One export in a fresh process, for its peak memory:
python -m bench.memprobe {job|export|pandas} DATABASE_URL DESTINATION COLUMNS
prints {"peak_mb": ..., "start_mb": ..., "seconds": ...} as its last line: the peak
resident set size of the process (VmHWM, interpreter and imports included), and its
resident set size before the export began."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    kind, url, destination, columns = sys.argv[1:5]
    from orders_core.db import open_database

    from . import b_export, baselines
    from .common import rss_bytes

    db = open_database(url)
    start = rss_bytes()
    began = time.perf_counter()
    helper_mb = 0.0
    if kind == "job":
        path, _ = b_export.export_via_job(db)
        Path(path).unlink(missing_ok=True)
    elif kind == "export":
        # export_orders itself, for the peak of its helper process too (SQLite reads
        # through ADBC in a helper process, whose memory this process's peak omits).
        from orders_core.export import export_orders
        from orders_core.queries import OrderFilters
        from orders_core.staff import SYSTEM

        result = export_orders(db, Path(destination), actor=SYSTEM, filters=OrderFilters())
        helper_mb = float(getattr(result, "helper_peak_rss_mb", 0) or 0)
        Path(destination).unlink(missing_ok=True)
    else:
        baselines.pandas_export(db, Path(destination), columns.split(","))
    seconds = time.perf_counter() - began
    # VmHWM: this process's own peak (ru_maxrss would include the parent's peak before
    # the fork, which Linux carries over).
    with open("/proc/self/status") as f:
        peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(
        json.dumps(
            {
                "peak_mb": round(peak_kb / 1024, 1),
                "start_mb": round(start / 2**20, 1),
                "helper_peak_mb": round(helper_mb, 1),
                "seconds": round(seconds, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
