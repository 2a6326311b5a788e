"""Jobs that show their progress, in a real browser: `streamlit run app.py` with the
embedded worker and the gateway paced by ORDERS_GATEWAY_RPS so that a mass Cancel takes
well over ten seconds, driven by Debian's headless Chromium.

- ops queues the Cancel of every Paid order from the Orders page (with its reason) and
  stays there; in a second tab the job's page shows at least three different progress
  values before the job finishes; support's jobs list, opened before the job existed,
  shows the job and its progress without a reload.
- when it finishes, ops's Orders page shows the toast with a link to the job, and the
  Paid tab's count and list are current, without a reload.
Screenshots at 1280 and 1920 px go to tests/artifacts/screenshots/."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orders_core import db as orders_db
from orders_core import demo
from orders_core.schema import jobs, orders
from tests.support.app_server import CHROMIUM, app_server, chromium, new_page, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():  # pragma: no cover - scripts/test.sh installs it
    pytest.skip("Debian's Chromium (/usr/bin/chromium) is not installed", allow_module_level=True)

PASSWORD = demo.DEMO_PASSWORD
TARGET_SECONDS = 14  # how long the paced job should take (at least 10 s is the point)


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """(base URL, database URL, Paid orders at the start)."""
    data_dir = tmp_path_factory.mktemp("job-progress")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    engine = orders_db.create_database_engine(url)
    try:
        demo.seed(orders_db.Database(engine), orders=120, random_seed=7)
        with engine.connect() as conn:
            paid = conn.execute(select(func.count()).where(orders.c.status == "paid")).scalar_one()
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    assert paid >= 20, paid
    rps = f"{paid / TARGET_SECONDS:.2f}"  # one refund request per order: about TARGET_SECONDS
    with app_server(
        url,
        data_dir,
        ORDERS_EMBEDDED_WORKER="1",
        ORDERS_GATEWAY_RPS=rps,
        ORDERS_CONFIRM_ABOVE_ORDERS="100000",
        ORDERS_CONFIRM_ABOVE_REFUND=str(10**12),
    ) as base:
        yield base, url, paid


def progress_text(page, scope: str = "body") -> str | None:
    bars = page.locator(f"{scope} [data-testid=stProgress]")
    try:
        return bars.first.inner_text(timeout=500) if bars.count() else None
    except Exception:  # noqa: BLE001 - mid-rerun
        return None


def done_count(text: str | None) -> int | None:
    match = re.search(r"([\d,]+) of ([\d,]+) done", text or "")
    return int(match.group(1).replace(",", "")) if match else None


def test_a_paced_job_shows_live_progress_then_a_toast_and_a_fresh_orders_list(site):
    base, url, paid = site
    with chromium() as browser:
        watcher = new_page(browser, width=1280)  # support, on the jobs list before the job exists
        watcher.goto(f"{base}/jobs")
        sign_in(watcher, "support@ordersdesk.test", PASSWORD)
        watcher.get_by_role("heading", name="Jobs").first.wait_for()

        ops = new_page(browser, width=1920)
        ops.goto(f"{base}/?status=paid")
        sign_in(ops, "ops@ordersdesk.test", PASSWORD)
        paid_tab = ops.locator(".st-key-orders_tab").get_by_role("radio", name=re.compile(r"^Paid"))
        paid_tab.filter(has_text=f"{paid:,}").wait_for()
        ops.locator(".st-key-orders_select_matching button").click()
        ops.get_by_text(f"All {paid:,} matching orders selected").first.wait_for()
        menu = ops.locator(".st-key-orders_mass_actions button:not([disabled])").first
        menu.click()
        ops.get_by_role("menuitem", name="Cancel").click()
        dialog = ops.get_by_role("dialog")
        dialog.get_by_text("Will be processed").wait_for()
        confirm = dialog.locator(".st-key-mass_confirm button")
        confirm.click()  # a mass Cancel needs its reason: refused at the field, nothing queued
        dialog.get_by_text("Give a reason for this mass Cancel").wait_for()
        shot(ops, "job_progress_00_mass_cancel_needs_a_reason_1920")
        dialog.locator(".st-key-mass_reason textarea").fill("Supplier recall R-12")
        shot(ops, "job_progress_01_mass_cancel_with_reason_1920")
        confirm.click()  # typed, then confirmed: one click
        notice = ops.get_by_text(re.compile(r"Job #\d+ is (queued|running)"))
        notice.wait_for()
        job_id = int(re.search(r"Job #(\d+)", notice.inner_text()).group(1))

        detail = ops.context.new_page()  # the same person, a second tab on the job's page
        detail.set_default_timeout(20_000)
        detail.goto(f"{base}/jobs?job={job_id}")
        detail.get_by_role("heading", name=re.compile(rf"Job #{job_id}")).wait_for()

        # support's list shows the new job without a reload (it looks for new jobs when idle)
        row = f".st-key-job_row_{job_id}"
        watcher.locator(row).wait_for(timeout=20_000)

        seen_detail: list[int] = []
        seen_list: list[int] = []
        shots = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for page, seen, scope in ((detail, seen_detail, "body"), (watcher, seen_list, row)):
                value = done_count(progress_text(page, scope))
                if value is not None and (not seen or seen[-1] != value):
                    seen.append(value)
            if shots == 0 and len(seen_detail) >= 2 and 0 < seen_detail[-1] < paid:
                shot(detail, "job_progress_02_job_page_running_1920")
                shot(watcher, "job_progress_03_jobs_list_running_1280")
                shots = 1
            if seen_detail and seen_detail[-1] == paid:
                break
            time.sleep(0.25)
        running_values = {v for v in seen_detail if v < paid}
        assert len(running_values) >= 3, seen_detail  # at least three values before the end
        assert len({v for v in seen_list if v < paid}) >= 3, seen_list

        with orders_db.open_database(url).read() as conn:
            job = conn.execute(select(jobs).where(jobs.c.id == job_id)).one()
        assert (job.finished_at - job.started_at).total_seconds() >= 10, "the job was not slowed enough"
        assert job.reason == "Supplier recall R-12"

        detail.get_by_text(f"Job #{job_id} finished: {paid:,} canceled, 0 failed").first.wait_for()
        shot(detail, "job_progress_04_job_page_completed_1920")

        # ops's Orders page, never reloaded: the toast with its link, and the list as it is now
        toast = ops.locator("[data-testid=stToast]").filter(has_text=f"Job #{job_id} finished")
        toast.wait_for(timeout=15_000)
        assert f"{paid:,} canceled, 0 failed" in toast.inner_text()
        assert (
            toast.get_by_role("link", name=f"Open job #{job_id}")
            .get_attribute("href")
            .endswith(f"/jobs?job={job_id}")
        )
        paid_tab.filter(has_text=re.compile(r"·\s*0$")).wait_for(timeout=10_000)
        shot(ops, "job_progress_05_orders_toast_and_fresh_counts_1920")
        ops.set_viewport_size({"width": 1280, "height": 1200})
        shot(ops, "job_progress_06_orders_after_job_1280")
        watcher.set_viewport_size({"width": 1920, "height": 1200})
        shot(watcher, "job_progress_07_jobs_list_finished_1920")
        for page in (detail, watcher):  # the jobs pages' own emails are text (the sidebar is the frame's)
            assert page.locator("[data-testid=stMain] a[href^=mailto]").count() == 0
            assert page.locator("[data-testid=stMain]").get_by_text(re.compile(r"@ordersdesk\.test")).count()


def test_a_job_with_failures_looks_different_and_shows_every_reason_in_full(site):
    from orders_core import jobs as jobs_service
    from orders_core.staff import find_staff

    base, url, _ = site
    db = orders_db.open_database(url)
    with db.read() as conn:
        fulfilled = list(
            conn.execute(select(orders.c.number).where(orders.c.status == "fulfilled").limit(3)).scalars()
        )
        canceled = list(
            conn.execute(select(orders.c.number).where(orders.c.status == "canceled").limit(2)).scalars()
        )
    ops_actor = find_staff(db, "ops@ordersdesk.test").as_actor()
    job = jobs_service.enqueue(
        db, ops_actor, "return", order_numbers=fulfilled + canceled, reason="Damaged in transit"
    )
    with chromium() as browser:
        for width in (1280, 1920):
            page = new_page(browser, width=width)
            page.goto(f"{base}/jobs?job={job.id}")
            sign_in(page, "ops@ordersdesk.test", PASSWORD)
            page.get_by_text(f"Job #{job.id} finished: 3 returned, 2 failed").first.wait_for(timeout=60_000)
            banner = page.locator("[data-testid=stAlertContentWarning]").filter(has_text="Some orders failed")
            banner.wait_for()
            page.locator(".stMarkdownBadge").filter(has_text="Completed with failures").first.wait_for()
            page.locator(".st-key-job_items_outcome button").filter(has_text="Failed").click()
            table = page.locator(".st-key-job_items_table")
            table.get_by_text("Return applies to Fulfilled orders only").first.wait_for()
            for number in canceled:  # the whole reason, not cut off
                reason = f"Order {number} is Canceled; Return applies to Fulfilled orders only"
                assert table.get_by_text(reason).count() == 1
            retry = page.locator(".st-key-job_retry_failed button").first
            assert retry.is_disabled()  # Canceled now: a retry cannot help, and the page says why
            page.get_by_text(re.compile(r"0 of 2 failed orders can be retried; 2 cannot")).wait_for()
            shot(page, f"job_progress_08_completed_with_failures_{width}")
            page.goto(f"{base}/jobs")
            page.locator(f".st-key-job_row_{job.id}").get_by_text("Completed with failures").wait_for()
            shot(page, f"job_progress_09_jobs_list_with_failures_{width}")
            page.context.close()
