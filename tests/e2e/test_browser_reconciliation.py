"""The Reconciliation page in a real browser: `streamlit run app.py` with its embedded
worker on, Debian's Chromium through Playwright. An analyst signs in, starts a
reconciliation of the last 30 days, and the page follows the job to its report (the
counts, the table, the CSV button) without a reload. Screenshots at 1280 and 1920 px
wide go to tests/artifacts/screenshots/."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from orders_core import db as orders_db
from orders_core import demo
from orders_core.payments.simulated import SimulatedGateway
from tests.support.app_server import CHROMIUM, app_server, chromium, new_page, shot, sign_in, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():  # pragma: no cover - scripts/test.sh installs it
    pytest.skip("Debian's Chromium (/usr/bin/chromium) is not installed", allow_module_level=True)

ANALYST = demo.DEMO_STAFF[3][0]


def stray_charge(db, amount: int) -> str:
    gateway = SimulatedGateway(db)
    charge = gateway.create_payment(
        amount=amount, currency="usd", reference="", idempotency_key=str(uuid.uuid4())
    )
    gateway.confirm_payment(charge.payment_id, token="tok_visa", idempotency_key=str(uuid.uuid4()))
    return charge.payment_id


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("reconcile-browser")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    engine = orders_db.create_database_engine(f"sqlite:///{path}")
    try:
        db = orders_db.Database(engine)
        demo.ensure_demo_staff(db)
        stray_charge(db, 1234)
        refunded = stray_charge(db, 5000)
        SimulatedGateway(db).refund(refunded, amount=700, idempotency_key="dashboard", reference="")
    finally:
        engine.dispose()
    with app_server(f"sqlite:///{path}", data_dir, ORDERS_EMBEDDED_WORKER="1") as base:
        yield base


@pytest.mark.parametrize("width", [1280, 1920])
def test_an_analyst_follows_a_reconciliation_to_its_report(site, width):
    with chromium() as browser:
        page = new_page(browser, width=width, height=1100)
        page.goto(f"{site}/reconciliation")
        sign_in(page, ANALYST, demo.DEMO_PASSWORD)
        page.get_by_role("heading", name="Reconciliation").first.wait_for()
        wait_idle(page)
        page.get_by_role("button", name="Start reconciliation").click()

        page.get_by_text("Completed").first.wait_for(timeout=30_000)
        wait_idle(page)
        page.get_by_text("Charges with no order").first.wait_for()
        page.get_by_role("button", name="Download CSV").wait_for()
        shot(page, f"reconciliation-report-{width}")
        assert "run=" in page.url  # the report has an address of its own
        metrics = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
        assert metrics == ["2", "0", "0", "1", "0"]
        labels = page.locator(".st-key-reconciliation_counts [data-testid=stMetricLabel]")
        clipped = labels.evaluate_all(  # the label or any element inside it cut off by an ellipsis
            """els => els.filter(e => [e, ...e.querySelectorAll('*')].some(
                   x => x.scrollWidth > x.clientWidth + 1)).map(e => e.innerText)"""
        )
        assert labels.count() == 5 and clipped == [], clipped  # every label whole, never "…"
        assert not page.locator("[data-testid=stMain] a[href^='mailto:']").count()  # emails are text
        page.context.close()
