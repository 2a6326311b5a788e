"""#7 The orders page at N orders, server side, with Streamlit's AppTest (target at 1M:
a rerun ≤ 300 ms, and never more than one page of rows, ≤ 200, sent to the browser).

The app (streamlit_app.py) runs as the analyst, signed in with a real session, on
the benchmark database, with the embedded worker off. After a first, untimed run
(imports, caches), each timed sample is one rerun of the default view (all orders,
newest first): what a person's click on the page costs the server. The rows sent are
counted from every dataframe element the run produced.

Baseline, same run: a rerun of a trivial app that shows one page (50 rows) of a
prepared DataFrame: the framework's own floor."""

from __future__ import annotations

import os
import time

from orders_core.config import reload_settings

from .common import REPO_ROOT, WORK_DIR, Figure, Stats, log

TRIVIAL_APP = """
import pandas as pd
import streamlit as st
st.title("Orders")
st.dataframe(pd.DataFrame({"number": [f"ORD-{i:010d}" for i in range(50)],
                           "total": list(range(50))}), hide_index=True)
"""


def _walk(node):
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield child
            yield from _walk(child)


def rows_sent(app) -> int:
    total = 0
    for element in _walk(app._tree):
        if type(element).__name__ == "Dataframe":
            total += len(element.value)
    return total


def _rerun_ms(app, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        app.run()
        samples.append((time.perf_counter() - start) * 1000)
        if app.exception:
            raise RuntimeError(f"the app failed: {app.exception}")
    return samples


def run(url: str, backend: str, *, repeat: int, orders: int) -> list[Figure]:
    saved = {k: os.environ.get(k) for k in ("ORDERS_DATABASE_URL", "ORDERS_EMBEDDED_WORKER")}
    os.environ["ORDERS_DATABASE_URL"] = url
    os.environ["ORDERS_EMBEDDED_WORKER"] = "0"
    reload_settings()  # the app under test reads its database from the settings
    try:
        return _run(url, backend, repeat=repeat, orders=orders)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reload_settings()


def _run(url: str, backend: str, *, repeat: int, orders: int) -> list[Figure]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from orders_core.db import open_database
    from tests.support.staff_browser import FakeBrowser, installed_fake_browser

    st.cache_resource.clear()  # pages.ui.resources.get_db() is cached per process
    st.cache_data.clear()
    db = open_database(url)
    browser = FakeBrowser()
    browser.sign_in(db, "analyst@ordersdesk.test", "demo-password")
    app = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=300)
    reruns = max(5, repeat)
    with installed_fake_browser(browser):  # the analyst's session cookie, as a browser sends it
        app.run()
        if app.exception:
            raise RuntimeError(f"the orders page failed: {app.exception}")
        page_ms = _rerun_ms(app, reruns)
        sent = rows_sent(app)

    trivial = WORK_DIR / "trivial_app.py"
    trivial.parent.mkdir(parents=True, exist_ok=True)
    trivial.write_text(TRIVIAL_APP)
    floor = AppTest.from_file(str(trivial), default_timeout=60)
    floor.run()
    floor_ms = _rerun_ms(floor, reruns)
    log(
        f"dashboard: rerun {sorted(page_ms)[len(page_ms) // 2]:.0f} ms, {sent} rows sent "
        f"(trivial app {sorted(floor_ms)[len(floor_ms) // 2]:.0f} ms)"
    )
    at_scale = orders >= 1_000_000 and backend == "sqlite"
    value = Stats.of(page_ms, "ms")
    return [
        Figure(
            key=f"dashboard_rerun.{backend}",
            title=f"Orders page rerun, server side (AppTest, {orders:,} orders)",
            backend=backend,
            value=value,
            better="lower",
            baseline=Stats.of(floor_ms, "ms"),
            baseline_title="trivial one-table app",
            target="≤ 300 ms" if backend == "sqlite" else "",
            met=(value.median <= 300) if at_scale else None,
            extra={"reruns": reruns},
        ),
        Figure(
            key=f"dashboard_rows.{backend}",
            title="Orders page: rows sent to the browser",
            backend=backend,
            value=Stats.of([float(sent)], "rows"),
            better="lower",
            target="≤ 200 (one page)",
            met=sent <= 200,
            extra={"rows": sent},
        ),
    ]
