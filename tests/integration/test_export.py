"""The orders CSV export (orders_core/export.py), on SQLite and PostgreSQL: what is in
the file, which orders, and that any text comes back out of it intact and harmless."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, literal_column, select

from orders_core import cli, demo, queries
from orders_core.addresses import PostalAddress, address_one_line
from orders_core.checkout import CartItem, place_order
from orders_core.errors import NotFound, ValidationError
from orders_core.export import COLUMNS, ExportResult, export_orders
from orders_core.order_detail import iso
from orders_core.queries import OrderFilters
from orders_core.schema import job_items, jobs, order_items, orders
from orders_core.staff import SYSTEM
from tests.integration.conftest import HOME
from tests.support.spreadsheet_cells import DANGEROUS_STARTS, HOSTILE_TEXTS, escaped

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TEXT_COLUMNS = (
    "order_number",
    "status",
    "customer_email",
    "customer_name",
    "sku_codes",
    "product_names",
    "quantities",
    "currency",
    "shipping_address",
)


# -- reading the file back ----------------------------------------------------------------------
def read_export(result: ExportResult) -> list[dict[str, str]]:
    """The rows, read the way a program would: Python's csv module, UTF-8 (no BOM)."""
    raw = result.path.read_bytes()
    assert len(raw) == result.bytes
    assert not raw.startswith(b"\xef\xbb\xbf")
    with open(result.path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        assert tuple(next(reader)) == COLUMNS
        rows = [dict(zip(COLUMNS, row, strict=True)) for row in reader]
    assert len(rows) == result.rows
    return rows


def unescape(cell: str) -> str:
    """Undo the formula escape: a cell that starts with ' had one put in front."""
    return cell[1:] if cell.startswith("'") else cell


def as_exported(text: str) -> str:
    """What the export writes for any `text`: escaped when it starts dangerously."""
    return "'" + text if text.startswith(FORMULA_STARTS + ("'",)) else text


def insert_order(db, customer_id: int, *, items=(("BOX-USD", 1, 1999),), **values) -> int:
    """An order (and its items) written straight into the tables; its id."""
    now = dt.datetime(2026, 3, 14, 15, 9, 26, 535897)
    row = {
        "number": "pending",
        "customer_id": customer_id,
        "customer_email": "ada@example.test",
        "customer_name": "Ada Lovelace",
        "status": "paid",
        "currency": "usd",
        "total_amount": sum(q * unit for _, q, unit in items),
        "refunded_amount": 0,
        "item_count": len(items),
        "created_at": now,
        "updated_at": now,
        "paid_at": now,
    }
    row.update(values)
    with db.write() as conn:
        order_id = conn.execute(insert(orders).values(row)).inserted_primary_key[0]
        if row["number"] == "pending":
            conn.execute(orders.update().where(orders.c.id == order_id).values(number=f"ORD-{order_id:06d}"))
        for code, quantity, unit in items:
            conn.execute(
                insert(order_items).values(
                    order_id=order_id,
                    sku_id=1,
                    sku_code=code,
                    name=code,
                    product_name=f"{code} product",
                    quantity=quantity,
                    unit_amount=unit,
                    amount=quantity * unit,
                )
            )
    return order_id


def delete_order(db, order_id: int) -> None:
    with db.write() as conn:
        conn.execute(delete(order_items).where(order_items.c.order_id == order_id))
        conn.execute(delete(orders).where(orders.c.id == order_id))


# -- any text survives, and none of it can run as a formula ----------------------------------------
def any_text(max_size: int):
    """Unicode text with what breaks CSV files and spreadsheets mixed in: formula
    characters, quotes, separators, CR/LF, emoji, right-to-left marks. (No NUL:
    PostgreSQL cannot store it in text.)"""
    awkward = st.sampled_from(
        list("=+-@\t\r\n\"',;")
        + ["\r\n", "😀", "👩‍👩‍👧", "\u200f", "\u202e", "\u2028", "שלום", "مرحبا", "é", "\ufeff"]
    )
    anything = st.characters(codec="utf-8", exclude_characters="\x00")
    chunk = st.one_of(awkward, st.text(anything, min_size=1, max_size=8))
    free = st.lists(chunk, max_size=8).map("".join).map(lambda s: s[:max_size])
    formula = st.tuples(st.sampled_from(FORMULA_STARTS + ("'",)), free).map(
        lambda t: (t[0] + t[1])[:max_size]
    )
    return st.one_of(free, formula)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=any_text(60), line1=any_text(60), line2=any_text(60), city=any_text(40), product=any_text(60))
def test_any_text_round_trips_through_the_csv_and_every_formula_cell_is_escaped(
    customer, db, tmp_path, name, line1, line2, city, product
):
    order_id = insert_order(
        db,
        customer.id,
        customer_name=name,
        ship_name=name,
        ship_line1=line1,
        ship_line2=line2,
        ship_city=city,
        ship_region="",
        ship_postal_code="0150",
        ship_country="NO",
        items=(("BOX-USD", 2, 1999), ("PASS-USD", 1, 500)),
    )
    try:
        with db.write() as conn:
            conn.execute(
                order_items.update()
                .where(order_items.c.order_id == order_id, order_items.c.sku_code == "PASS-USD")
                .values(product_name=product)
            )
        [row] = read_export(export_orders(db, tmp_path / "any.csv", order_ids=[order_id], actor=SYSTEM))
    finally:
        delete_order(db, order_id)

    address = address_one_line(PostalAddress(name, line1, line2, city, "", "0150", "NO"))
    assert row["customer_name"] == as_exported(name)
    assert row["shipping_address"] == as_exported(address)
    assert row["product_names"] == as_exported(f"BOX-USD product; {product}")
    assert unescape(row["customer_name"]) == name
    assert unescape(row["shipping_address"]) == address
    for column in TEXT_COLUMNS:
        assert not row[column].startswith(FORMULA_STARTS), (column, row[column])


def test_formula_text_is_escaped_in_every_text_column_and_numbers_are_not(customer, db, tmp_path):
    order_id = insert_order(
        db,
        customer.id,
        customer_name='=HYPERLINK("http://x","y")',
        customer_email="@evil.example",
        ship_name="+1 555",
        ship_line1="x",
        ship_city="c",
        ship_postal_code="p",
        ship_country="GB",
        items=(("-SKU", 1, 100), ("OK", 2, 100)),
    )
    [row] = read_export(export_orders(db, tmp_path / "f.csv", order_ids=[order_id], actor=SYSTEM))
    assert row["customer_name"] == '\'=HYPERLINK("http://x","y")'
    assert row["customer_email"] == "'@evil.example"
    assert row["shipping_address"] == "'+1 555, x, c, p, GB"
    assert row["sku_codes"] == "'-SKU; OK"
    assert row["total"] == "3.00" and row["refunded"] == "0.00"


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=[repr(s) for s in DANGEROUS_STARTS])
def test_every_cell_start_a_spreadsheet_acts_on_is_escaped_in_the_export(customer, db, tmp_path, text):
    order_id = insert_order(db, customer.id, customer_name=text, items=((text, 1, 100),))
    [row] = read_export(export_orders(db, tmp_path / "f.csv", order_ids=[order_id], actor=SYSTEM))
    assert row["customer_name"] == escaped(text)
    assert row["sku_codes"] == escaped(text)


# -- which orders ----------------------------------------------------------------------------------
@pytest.fixture
def seeded(db):
    demo.seed(db, orders=400, random_seed=11, now=dt.datetime(2026, 6, 1, 12, 0, 0))
    return db


@pytest.mark.parametrize(
    "filters",
    [
        OrderFilters(),
        OrderFilters.parse(status="paid"),
        OrderFilters.parse(status="fulfilled", created_from="2026-03-01", created_to="2026-04-30"),
        OrderFilters.parse(min_total="20", max_total="80", currency="usd"),
        OrderFilters.parse(sku="PASS-DAY-JPY"),
        OrderFilters.parse(search="o'connor"),
        OrderFilters.parse(search="ORD-000007"),
    ],
    ids=["all", "status", "status-and-dates", "totals", "sku", "search-name", "search-number"],
)
def test_an_export_by_filters_has_exactly_the_orders_the_order_list_counts(seeded, tmp_path, filters):
    result = export_orders(seeded, tmp_path / "orders.csv", filters=filters, actor=SYSTEM)
    rows = read_export(result)

    with seeded.read() as conn:
        expected = [f"ORD-{i:06d}" for i in queries.matching_order_ids(conn, filters)]
    listed = queries.list_orders(seeded, filters, page_size=1, actor=SYSTEM).total
    assert result.rows == listed == len(expected)
    assert [r["order_number"] for r in rows] == expected  # in order id order


def test_the_columns_of_seeded_orders_match_the_order_detail(seeded, tmp_path):
    rows = read_export(export_orders(seeded, tmp_path / "all.csv", filters=OrderFilters(), actor=SYSTEM))
    assert len(rows) == 400
    for row in rows[::37]:
        detail = queries.order_detail(seeded, row["order_number"], actor=SYSTEM)
        assert row["status"] == detail.status
        assert row["customer_email"] == detail.customer.email
        assert unescape(row["customer_name"]) == detail.customer.name
        assert row["sku_codes"] == "; ".join(i.sku for i in detail.items)
        assert row["product_names"] == "; ".join(i.product for i in detail.items)
        assert row["quantities"] == "; ".join(str(i.quantity) for i in detail.items)
        assert row["currency"] == detail.currency
        for column in ("created_at", "paid_at", "fulfilled_at", "canceled_at", "returned_at"):
            assert row[column] == (iso(getattr(detail, column)) or "")
            assert row[column] == "" or ISO_UTC.match(row[column])


def test_an_export_by_order_ids_has_those_orders_once_each_in_id_order(customer, db, tmp_path):
    a, b, c = (insert_order(db, customer.id) for _ in range(3))
    result = export_orders(db, tmp_path / "ids.csv", order_ids=[c, a, c, 10**9], actor=SYSTEM)
    assert [r["order_number"] for r in read_export(result)] == [f"ORD-{a:06d}", f"ORD-{c:06d}"]


def test_an_export_by_job_has_the_orders_of_that_jobs_items(customer, db, tmp_path):
    first, second, third = (insert_order(db, customer.id) for _ in range(3))
    now = dt.datetime(2026, 5, 1, 9, 30)
    with db.write() as conn:
        job_id = conn.execute(
            insert(jobs).values(
                action="export", status="running", actor="analyst@ordersdesk.test", created_at=now
            )
        ).inserted_primary_key[0]
        other_job = conn.execute(
            insert(jobs).values(
                action="export", status="queued", actor="analyst@ordersdesk.test", created_at=now
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(job_items),
            [
                {
                    "job_id": job_id,
                    "seq": 1,
                    "order_id": third,
                    "order_number": f"ORD-{third:06d}",
                    "status": "pending",
                },
                {
                    "job_id": job_id,
                    "seq": 2,
                    "order_id": first,
                    "order_number": f"ORD-{first:06d}",
                    "status": "pending",
                },
                {
                    "job_id": other_job,
                    "seq": 1,
                    "order_id": second,
                    "order_number": f"ORD-{second:06d}",
                    "status": "pending",
                },
            ],
        )

    result = export_orders(db, tmp_path / "job.csv", job_id=job_id, actor=SYSTEM)

    assert [r["order_number"] for r in read_export(result)] == [f"ORD-{first:06d}", f"ORD-{third:06d}"]
    with pytest.raises(NotFound):
        export_orders(db, tmp_path / "none.csv", job_id=other_job + 100, actor=SYSTEM)


def test_an_empty_selection_writes_the_header_alone(customer, db, tmp_path):
    insert_order(db, customer.id, status="paid")
    result = export_orders(
        db, tmp_path / "empty.csv", filters=OrderFilters.parse(status="returned"), actor=SYSTEM
    )
    assert result.rows == 0
    assert result.path.read_bytes() == (",".join(COLUMNS) + "\r\n").encode()
    assert read_export(result) == []
    assert export_orders(db, tmp_path / "none.csv", order_ids=[], actor=SYSTEM).rows == 0


@pytest.mark.parametrize(
    "selection",
    [
        {},
        {"filters": OrderFilters(), "order_ids": [1]},
        {"order_ids": [1], "job_id": 1},
        {"order_ids": "12"},
        {"order_ids": [1.5]},
        {"job_id": "1"},
        {"filters": {"status": "paid"}},
    ],
    ids=["none", "filters-and-ids", "ids-and-job", "ids-text", "ids-float", "job-text", "filters-dict"],
)
def test_the_selection_must_be_exactly_one_of_filters_ids_or_job(db, tmp_path, selection):
    with pytest.raises(ValidationError):
        export_orders(db, tmp_path / "out" / "x.csv", **selection, actor=SYSTEM)
    assert not (tmp_path / "out").exists()


# -- what the columns hold -------------------------------------------------------------------------
def test_totals_and_refunds_are_exact_major_units_for_each_currency(customer, db, tmp_path):
    usd = insert_order(db, customer.id, items=(("BOX-USD", 1, 1999),), refunded_amount=500)
    jpy = insert_order(db, customer.id, currency="jpy", items=(("PASS-JPY", 1, 1200),), refunded_amount=1200)
    kwd = insert_order(db, customer.id, currency="kwd", items=(("BOX-KWD", 1, 1500),))
    big = insert_order(db, customer.id, currency="eur", items=(("BIG", 3, 33_333_333),))
    cents = insert_order(db, customer.id, currency="gbp", items=(("SMALL", 1, 7),))

    rows = {
        r["order_number"]: r
        for r in read_export(
            export_orders(db, tmp_path / "money.csv", order_ids=[usd, jpy, kwd, big, cents], actor=SYSTEM)
        )
    }
    got = {
        i: (rows[f"ORD-{i:06d}"]["total"], rows[f"ORD-{i:06d}"]["refunded"])
        for i in (usd, jpy, kwd, big, cents)
    }
    assert got == {
        usd: ("19.99", "5.00"),
        jpy: ("1200", "1200"),
        kwd: ("1.500", "0.000"),
        big: ("999999.99", "0.00"),
        cents: ("0.07", "0.00"),
    }


def test_a_multi_item_order_lists_its_items_in_order_and_its_address_in_one_cell(customer, db, tmp_path):
    order = place_order(
        db, customer, items=[CartItem("BOX-USD", 2), CartItem("PASS-USD", 1)], token="tok_visa", address=HOME
    )
    place_order(db, customer, items=[CartItem("PASS-EUR", 3)], token="tok_visa")  # a digital one

    first, second = read_export(
        export_orders(db, tmp_path / "items.csv", filters=OrderFilters(), actor=SYSTEM)
    )

    assert first == {
        "order_number": order.number,
        "created_at": iso(order.created_at),
        "status": "paid",
        "customer_email": "Ada@Example.test",
        "customer_name": "Ada Lovelace",
        "sku_codes": "BOX-USD; PASS-USD",
        "product_names": "Print box; Digital pass",
        "quantities": "2; 1",
        "total": "44.98",
        "currency": "usd",
        "paid_at": iso(order.paid_at),
        "fulfilled_at": "",
        "canceled_at": "",
        "returned_at": "",
        "refunded": "0.00",
        "shipping_address": "Ada Lovelace, 12 St James's Square, London, SW1Y 4JH, GB",
    }
    assert ISO_UTC.match(first["created_at"]) and ISO_UTC.match(first["paid_at"])
    assert (
        second["sku_codes"],
        second["quantities"],
        second["total"],
        second["currency"],
        second["shipping_address"],
    ) == ("PASS-EUR", "3", "13.50", "eur", "")


def test_names_with_commas_quotes_and_newlines_keep_them(customer, db, tmp_path):
    name = 'O\'Brien, "Pat"\r\nsecond line\nthird'
    order_id = insert_order(db, customer.id, customer_name=name)
    result = export_orders(db, tmp_path / "names.csv", order_ids=[order_id], actor=SYSTEM)
    [row] = read_export(result)
    assert row["customer_name"] == name
    assert b'"O\'Brien, ""Pat""\r\nsecond line\nthird"' in result.path.read_bytes()


# -- the file ---------------------------------------------------------------------------------------
def test_the_file_appears_complete_or_not_at_all(customer, db, tmp_path, monkeypatch):
    insert_order(db, customer.id)
    destination = tmp_path / "new" / "folder" / "orders.csv"
    result = export_orders(db, destination, filters=OrderFilters(), actor=SYSTEM)
    assert result.path == destination and result.rows == 1 and result.seconds >= 0
    assert (result.helper_peak_rss_mb is not None) == db.is_sqlite  # SQLite: a helper process
    assert sorted(p.name for p in destination.parent.iterdir()) == ["orders.csv"]

    before = destination.read_bytes()
    from orders_core import export

    monkeypatch.setattr(
        export, "_order_query", lambda db, where: select(literal_column("no_such_column")).select_from(orders)
    )
    with pytest.raises(Exception, match="no_such_column"):
        export_orders(db, destination, filters=OrderFilters(), actor=SYSTEM)
    assert destination.read_bytes() == before  # the old file stays as it was
    assert sorted(p.name for p in destination.parent.iterdir()) == ["orders.csv"]  # no leftovers


# -- the command line -------------------------------------------------------------------------------
@pytest.fixture
def cli_env(db, database_url, monkeypatch):
    monkeypatch.setenv("ORDERS_DATABASE_URL", database_url)
    return db


def test_the_export_command_writes_the_file_and_reports_it(cli_env, customer, tmp_path, capsys):
    paid = insert_order(cli_env, customer.id, status="paid")
    insert_order(cli_env, customer.id, status="created", paid_at=None)
    output = tmp_path / "cli" / "paid.csv"

    assert cli.main(["export", "--status", "paid", "--output", str(output), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["path"] == str(output)
    assert (printed["rows"], printed["bytes"]) == (1, output.stat().st_size)
    with open(output, newline="", encoding="utf-8") as f:
        assert [r["order_number"] for r in csv.DictReader(f)] == [f"ORD-{paid:06d}"]

    assert cli.main(["export", "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Exported 2 orders (all statuses) to ") and str(output) in out


def test_the_export_command_refuses_bad_filters_and_needs_an_output(cli_env, tmp_path, capsys):
    assert cli.main(["export", "--status", "lost", "--output", str(tmp_path / "x.csv")]) == 1
    assert capsys.readouterr().err.startswith("error: Unknown status 'lost'")
    assert cli.main(["export", "--status", "paid"]) == 2
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("country", "city", "region", "postal_code", "written"),
    [
        ("US", "Chicago", "IL", "60614", "Ada Lovelace, 1 Main St, Chicago, IL 60614, US"),
        ("GB", "London", "", "SW1Y 4JH", "Ada Lovelace, 1 Main St, London, SW1Y 4JH, GB"),
        ("FR", "Paris", "", "75001", "Ada Lovelace, 1 Main St, 75001 Paris, FR"),
        ("AU", "Sydney", "NSW", "2000", "Ada Lovelace, 1 Main St, Sydney NSW 2000, AU"),
        ("BR", "Recife", "PE", "50000-000", "Ada Lovelace, 1 Main St, Recife, PE 50000-000, BR"),
    ],
)
def test_the_address_cell_follows_the_countrys_convention_as_the_order_page_does(
    customer, db, tmp_path, country, city, region, postal_code, written
):
    order_id = insert_order(
        db,
        customer.id,
        ship_name="Ada Lovelace",
        ship_line1="1 Main St",
        ship_line2="",
        ship_city=city,
        ship_region=region,
        ship_postal_code=postal_code,
        ship_country=country,
    )
    try:
        [row] = read_export(export_orders(db, tmp_path / "a.csv", order_ids=[order_id], actor=SYSTEM))
    finally:
        delete_order(db, order_id)
    assert row["shipping_address"] == written
    page = address_one_line(
        PostalAddress("Ada Lovelace", "1 Main St", "", city, region, postal_code, country)
    )
    assert page == written
