"""orders_core.analytics against independent SQL, on SQLite (ADBC → Arrow) and
PostgreSQL (SQLAlchemy batches → Arrow), with the demo seed's orders."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from orders_core import adbc_helper, analytics, demo, money
from orders_core import db as orders_db
from orders_core.clock import utcnow
from orders_core.queries import OrderFilters, list_orders
from orders_core.schema import order_items, orders, skus
from orders_core.staff import SYSTEM
from tests.support import postgres as pg
from tests.support.spreadsheet_cells import HOSTILE_TEXTS, escaped

NOW = dt.datetime(2026, 6, 1, 12, 0, 0)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def seeded(request, tmp_path_factory):
    """300 demo orders seeded once per backend, shared by the read-only tests below."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("analytics-seeded") / "orders.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url, drop = f"sqlite:///{path}", None
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"analytics_seeded_{os.getpid()}"
        url = pg.create_database(server, name, template=request.getfixturevalue("postgres_template"))
        drop = lambda: pg.drop_database(server, name)  # noqa: E731
    db = orders_db.Database(orders_db.create_database_engine(url))
    demo.seed(db, orders=300, random_seed=5, now=NOW)
    yield db
    db.dispose()
    if drop:
        drop()


def expected_tiles(db, filters: OrderFilters) -> dict[str, dict]:
    where = filters.conditions()
    paid = orders.c.paid_at.is_not(None)
    query = (
        select(
            orders.c.currency,
            func.count(),
            func.coalesce(func.sum(orders.c.total_amount).filter(paid), 0),
            func.coalesce(func.sum(orders.c.refunded_amount), 0),
            func.count().filter(paid),
        )
        .where(*where)
        .group_by(orders.c.currency)
    )
    with db.read() as conn:
        return {
            c: {"orders": n, "gross": int(g), "refunds": int(r), "paid": p}
            for c, n, g, r, p in conn.execute(query)
        }


def tiles_by_currency(report) -> dict[str, dict]:
    return {
        row.currency: {
            "orders": row.orders,
            "gross": row.gross,
            "refunds": row.refunds,
            "paid": row.paid_orders,
        }
        for row in report.tiles.itertuples(index=False)
    }


FILTER_CASES = [
    {},
    {"status": "paid"},
    {"status": "returned"},
    {"created_from": "2026-03-01", "created_to": "2026-04-15"},
    {"search": "a"},
    {"sku": "PASS-DAY-USD"},
    {"min_total": "20", "max_total": "100", "currency": "usd"},
    {"status": "fulfilled", "sku": "BOX-MONTHLY-USD", "created_from": "2026-01-01"},
]


@pytest.mark.parametrize("case", FILTER_CASES, ids=lambda c: ",".join(c) or "none")
def test_key_figures_match_sql(seeded, case):
    filters = OrderFilters.parse(**case)
    report = analytics.build_report(seeded, filters, now=NOW, actor=SYSTEM)
    expected = expected_tiles(seeded, filters)
    assert tiles_by_currency(report) == expected
    assert report.orders == list_orders(seeded, filters, page_size=1, actor=SYSTEM).total
    for row in report.tiles.itertuples(index=False):
        assert row.net == row.gross - row.refunds
        if row.gross:
            assert row.refund_rate == pytest.approx(row.refunds / row.gross)
        if row.paid_orders:
            assert row.average_order_value == round(row.gross / row.paid_orders)


def test_daily_statuses_and_funnel_add_up(seeded):
    report = analytics.build_report(seeded, OrderFilters(), now=NOW, actor=SYSTEM)
    assert report.orders == 300
    assert int(report.daily["orders"].sum()) == 300
    by_currency = report.daily.groupby("currency")["revenue"].sum().to_dict()
    assert by_currency == {c: t["gross"] for c, t in expected_tiles(seeded, OrderFilters()).items()}
    with seeded.read() as conn:
        statuses = dict(conn.execute(select(orders.c.status, func.count()).group_by(orders.c.status)).all())
        paid = conn.execute(select(func.count()).where(orders.c.paid_at.is_not(None))).scalar_one()
        fulfilled = conn.execute(select(func.count()).where(orders.c.fulfilled_at.is_not(None))).scalar_one()
        returned = conn.execute(select(func.count()).where(orders.c.returned_at.is_not(None))).scalar_one()
    assert dict(zip(report.statuses["status"], report.statuses["orders"])) == {
        s: statuses.get(s, 0) for s in analytics.STATUS_ORDER
    }
    assert report.statuses["share"].sum() == pytest.approx(1.0)
    assert list(report.funnel["stage"]) == list(analytics.FUNNEL_STAGES)
    assert list(report.funnel["orders"]) == [300, paid, fulfilled, fulfilled - returned]
    # every day is a UTC calendar day within the seed's span
    assert report.daily["day"].min() >= pd.Timestamp(NOW - dt.timedelta(days=182)).normalize()


def test_top_skus_match_sql(seeded):
    report = analytics.build_report(seeded, OrderFilters(), top=5, now=NOW, actor=SYSTEM)
    query = (
        select(skus.c.code, func.sum(order_items.c.quantity).label("units"))
        .join(skus, skus.c.id == order_items.c.sku_id)
        .group_by(skus.c.code)
    )
    with seeded.read() as conn:
        units = dict(conn.execute(query).all())
        revenue = dict(
            conn.execute(
                select(skus.c.code, func.sum(order_items.c.amount))
                .join(skus, skus.c.id == order_items.c.sku_id)
                .join(orders, orders.c.id == order_items.c.order_id)
                .where(orders.c.paid_at.is_not(None))
                .group_by(skus.c.code)
            ).all()
        )
    assert len(report.top_skus) == 5
    assert list(report.top_skus["units"]) == sorted(report.top_skus["units"], reverse=True)
    assert report.top_skus["units"].iloc[0] == max(units.values())
    for row in report.top_skus.itertuples(index=False):
        assert row.units == units[row.sku]
        assert row.revenue == revenue.get(row.sku, 0)
        assert row.name and row.product


def test_fulfilment_time_and_unfulfilled_list(seeded):
    report = analytics.build_report(seeded, OrderFilters(), stale_days=7, now=NOW, actor=SYSTEM)
    with seeded.read() as conn:
        pairs = conn.execute(
            select(orders.c.paid_at, orders.c.fulfilled_at).where(
                orders.c.paid_at.is_not(None), orders.c.fulfilled_at.is_not(None)
            )
        ).all()
        stale = (
            conn.execute(
                select(orders.c.number)
                .where(orders.c.status == "paid", orders.c.paid_at <= NOW - dt.timedelta(days=7))
                .order_by(orders.c.paid_at, orders.c.id)
            )
            .scalars()
            .all()
        )
    hours = [(f - p).total_seconds() / 3600 for p, f in pairs]
    assert report.fulfillment.orders == len(hours)
    assert report.fulfillment.median_hours == pytest.approx(statistics.median(hours), abs=1e-6)
    assert report.fulfillment.p90_hours >= report.fulfillment.median_hours
    assert report.unfulfilled_total == len(stale)
    assert list(report.unfulfilled["number"]) == stale[: analytics.UNFULFILLED_LIMIT]
    assert (report.unfulfilled["days_waiting"] >= 7).all()
    fewer = analytics.build_report(
        seeded, OrderFilters(), stale_days=7, now=NOW, unfulfilled_limit=3, actor=SYSTEM
    )
    assert list(fewer.unfulfilled["number"]) == stale[:3]
    assert fewer.unfulfilled_total == len(stale)


def test_empty_database_and_no_match(db):
    report = analytics.build_report(db, OrderFilters(), actor=SYSTEM)
    assert report.empty and report.orders == 0
    assert report.tiles.empty and report.daily.empty and report.top_skus.empty
    assert report.unfulfilled.empty and report.unfulfilled_total == 0
    assert report.fulfillment == analytics.FulfillmentTime(0, None, None)
    assert list(report.funnel["orders"]) == [0, 0, 0, 0]
    demo.seed(db, orders=20, random_seed=2, now=NOW)
    none = analytics.build_report(db, OrderFilters.parse(created_from="2030-01-01"), actor=SYSTEM)
    assert none.empty and none.tiles.empty


def test_bad_stale_days_are_refused(db):
    from orders_core.errors import ValidationError

    for bad in ("-1", "abc", 10**6, True):
        with pytest.raises(ValidationError):
            analytics.build_report(db, OrderFilters(), stale_days=bad, actor=SYSTEM)


def test_search_text_with_like_wildcards_and_quotes(seeded):
    """Filter text travels as bound parameters on both loaders, never spliced into SQL."""
    for text in ("%", "_", "'; DROP TABLE orders; --", "\\"):
        filters = OrderFilters.parse(search=text)
        report = analytics.build_report(seeded, filters, now=NOW, actor=SYSTEM)
        assert report.orders == list_orders(seeded, filters, page_size=1, actor=SYSTEM).total
    with seeded.read() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 300


def test_adbc_loader_matches_sqlalchemy_batches(sqlite_db):
    demo.seed(sqlite_db, orders=120, random_seed=9, now=NOW)
    filters = OrderFilters.parse(created_from="2026-02-01", min_total="10", currency="usd")
    query = analytics.orders_query(sqlite_db, filters)
    fast = analytics.fetch_arrow(sqlite_db, query, analytics.ORDER_SCHEMA)
    slow = analytics._fetch_batches(sqlite_db, query, analytics.ORDER_SCHEMA)
    assert fast.num_rows == slow.num_rows > 0
    assert fast.sort_by("id").equals(slow.sort_by("id"))
    items_fast = analytics.fetch_arrow(sqlite_db, analytics.items_query(filters), analytics.ITEM_SCHEMA)
    items_slow = analytics._fetch_batches(sqlite_db, analytics.items_query(filters), analytics.ITEM_SCHEMA)
    assert items_fast.sort_by("order_id").equals(items_slow.sort_by("order_id"))


def test_sqlite_reads_never_disturb_the_apps_own_connections(sqlite_db):
    """ADBC's SQLite runs in the helper process: the app's WAL files stay, and what the
    app writes next is seen by every new connection."""
    import sqlite3

    from sqlalchemy import insert, text

    demo.seed(sqlite_db, orders=30, random_seed=6, now=NOW)
    path = Path(sqlite_db.engine.url.database)
    with sqlite_db.read() as conn:  # an open connection of the app, as a server has
        conn.execute(text("SELECT 1"))
        for _ in range(3):
            assert analytics.build_report(sqlite_db, OrderFilters(), now=NOW, actor=SYSTEM).orders == 30
        assert Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    with sqlite_db.write() as conn:
        conn.execute(
            insert(skus).values(
                code="AFTER-ADBC", name="x", product_id=1, unit_amount=1, currency="usd", active=True
            )
        )
    fresh = sqlite3.connect(path)
    try:
        assert fresh.execute("SELECT count(*) FROM skus WHERE code = 'AFTER-ADBC'").fetchone() == (1,)
    finally:
        fresh.close()
    helper = adbc_helper.kept_helper()
    assert helper is not None and helper.poll() is None


def test_helper_restarts_and_falls_back(sqlite_db, monkeypatch):
    demo.seed(sqlite_db, orders=12, random_seed=8, now=NOW)
    assert analytics.build_report(sqlite_db, OrderFilters(), now=NOW, actor=SYSTEM).orders == 12
    adbc_helper.kept_helper().kill()
    adbc_helper.kept_helper().wait()
    assert analytics.build_report(sqlite_db, OrderFilters(), now=NOW, actor=SYSTEM).orders == 12  # restarted
    adbc_helper.stop_kept_helper()
    monkeypatch.setattr(adbc_helper.sys, "executable", "/nonexistent/python")
    fallback = analytics.build_report(sqlite_db, OrderFilters.parse(status="paid"), now=NOW, actor=SYSTEM)
    assert (
        fallback.orders
        == list_orders(sqlite_db, OrderFilters.parse(status="paid"), page_size=1, actor=SYSTEM).total
    )


def test_epoch_seconds_are_utc(db):
    demo.seed(db, orders=5, random_seed=4, now=NOW)
    table = analytics.load_orders(db, OrderFilters())
    with db.read() as conn:
        created = dict(conn.execute(select(orders.c.id, orders.c.created_at)).all())
    for order_id, seconds in zip(table.column("id").to_pylist(), table.column("created_s").to_pylist()):
        epoch = dt.datetime(1970, 1, 1)
        assert epoch + dt.timedelta(seconds=seconds) == created[order_id].replace(microsecond=0)


def test_csv_neutralizes_formulas_and_writes_major_units(db):
    frame = pd.DataFrame(
        {
            "customer_name": ['=HYPERLINK("x")', "Ada", "@cmd", "-2+3"],
            "currency": ["usd", "jpy", "eur", "kwd"],
            "total_amount": [1999, 1200, 5, 12345],
            "count": [-1, 0, 1, 2],
        }
    )
    text = analytics.report_csv(db, analytics.major_units(frame, ["total_amount"]), actor=SYSTEM).decode()
    lines = text.splitlines()
    assert lines[0] == "customer_name,currency,total_amount,count"
    assert lines[1].startswith("\"'=HYPERLINK") and lines[1].endswith(",usd,19.99,-1")
    assert lines[2] == "Ada,jpy,1200,0"
    assert lines[3] == "'@cmd,eur,0.05,1"
    assert lines[4] == "'-2+3,kwd,12.345,2"


def test_report_uses_now_by_default(db):
    demo.seed(db, orders=10, random_seed=3)
    report = analytics.build_report(db, OrderFilters(), actor=SYSTEM)
    assert abs((report.generated_at - utcnow()).total_seconds()) < 60


def test_every_cell_start_a_spreadsheet_acts_on_is_escaped_in_the_analytics_csvs(db):
    frame = pd.DataFrame({"sku": list(HOSTILE_TEXTS), "units": range(len(HOSTILE_TEXTS))})
    written = pd.read_csv(io.BytesIO(analytics.report_csv(db, frame, actor=SYSTEM)), keep_default_na=False)
    assert list(written["sku"]) == [escaped(t) for t in HOSTILE_TEXTS]
    assert list(written["units"]) == list(range(len(HOSTILE_TEXTS)))


def test_analytics_csvs_carry_rates_as_percentages_with_two_decimals_and_rounded_figures(db):
    demo.seed(db, orders=300, random_seed=11)
    report = analytics.build_report(db, OrderFilters(), actor=SYSTEM)
    frame = analytics.major_units(report.tiles, ["gross", "refunds", "net", "average_order_value"])
    written = list(csv.DictReader(io.StringIO(analytics.report_csv(db, frame, actor=SYSTEM).decode())))
    assert written and "refund_rate" not in written[0]
    for row, tile in zip(written, report.tiles.itertuples(index=False)):
        assert float(row["refund_rate_percent"]) == pytest.approx(tile.refund_rate * 100, abs=0.005)
        assert re.fullmatch(r"\d+\.\d\d", row["refund_rate_percent"])
        places = money.exponent(tile.currency)
        assert re.fullmatch(rf"\d+(\.\d{{{places}}})?", row["average_order_value"]), row
    funnel = analytics.report_csv(db, report.funnel, actor=SYSTEM).decode().splitlines()
    assert funnel[0] == "stage,orders,share_of_placed_percent,share_of_previous_percent"
    assert all(re.fullmatch(r"[A-Za-z ()]+,\d+,\d+\.\d\d,\d+\.\d\d", line) for line in funnel[1:]), funnel


def test_a_rate_rounds_half_up_to_two_decimals_of_a_percent(db):
    frame = pd.DataFrame(
        {"share": [0.20606289387461146, 0.123449, 0.5, float("nan")], "hours": [1.005, 2, 3, 4]}
    )
    text = analytics.report_csv(db, frame, actor=SYSTEM).decode().splitlines()
    assert text == ["share_percent,hours", "20.61,1.01", "12.34,2.00", "50.00,3.00", ",4.00"]
