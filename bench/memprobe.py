"""One export in a fresh process, for its peak memory:
python -m bench.memprobe {job|pandas} DATABASE_URL DESTINATION COLUMNS
prints {"peak_mb": ..., "start_mb": ..., "seconds": ...} as its last line."""
from __future__ import annotations

import json
import resource
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
    if kind == "job":
        path, _ = b_export.export_via_job(db)
        Path(path).unlink(missing_ok=True)
    else:
        baselines.pandas_export(db, Path(destination), columns.split(","))
    seconds = time.perf_counter() - began
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": round(peak_kb / 1024, 1), "start_mb": round(start / 2**20, 1),
                      "seconds": round(seconds, 3)}))


if __name__ == "__main__":
    main()
