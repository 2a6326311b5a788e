# ruff: noqa: F811 - the fixtures of test_pages_orders (db, browser) are imported by name
"""Jobs that show their progress and tell the truth, through AppTest on the real entry
point: the toast when a job you started finishes and the orders list it refreshes, what
the page says after Cancel (in time, too late), how endings look, the bulk reason in
the dialog and in each order's timeline, emails as text. Each `at.run()` here stands for
a tick of the page's own timer (st.fragment(run_every=...)); the Chromium test
(test_browser_job_progress.py) shows the ticks happen by themselves."""

from __future__ import annotations

from sqlalchemy import select

from orders_core import jobs
from orders_core.job_engine import run_job_here
from orders_core.queries import OrderFilters
from orders_core.schema import order_events, orders
from orders_core.staff import find_staff
from tests.e2e.test_pages_orders import (  # noqa: F401 - fixtures
    OPS,
    SUPPORT,
    app_as,
    browser,
    db,
    grid,
    grid_numbers,
    menu,
    ok,
    seeded_template,
    texts,
    tick,
)

JOBS_PAGE = "pages/jobs_page.py"


def actor(db, email):
    return find_staff(db, email).as_actor()


def shown_counts(at) -> str:
    """The list's own lines: "Showing 1–50 of 54 orders" and the status tabs."""
    tab = at.get_by_key("orders_tab")
    return " ".join([c.value for c in at.caption] + [str(tab.proto)])


def numbers_in(db, status: str) -> list[str]:
    with db.read() as conn:
        return list(
            conn.execute(
                select(orders.c.number).where(orders.c.status == status).order_by(orders.c.id)
            ).scalars()
        )


def test_a_finished_job_you_started_toasts_with_a_link_and_refreshes_the_orders_list(db):
    paid = numbers_in(db, "paid")
    at = app_as(db, OPS, status="paid")
    assert f"of {len(paid):,} orders" in shown_counts(at)
    job = jobs.enqueue(db, actor(db, OPS), "fulfill", order_numbers=paid[:3])
    ok(at.run())  # the page notices a job of theirs is running
    assert not at.toast
    run_job_here(db, job.id)
    ok(at.run())  # the watcher's tick: finished
    toasts = [t.value for t in at.toast]
    assert any(f"Job #{job.id} finished: 3 fulfilled, 0 failed" in t.replace("\\", "") for t in toasts)
    assert any(f"(/jobs?job={job.id})" in t for t in toasts)
    shown = set(grid(at).value["Order"])
    assert not shown & set(paid[:3])  # the Paid list no longer holds them
    assert f"of {len(paid) - 3:,} orders" in shown_counts(at)
    ok(at.run())
    assert not at.toast  # once


def test_a_job_someone_else_started_gives_no_toast(db):
    at = app_as(db, OPS, status="paid")
    job = jobs.enqueue(db, actor(db, SUPPORT), "cancel", order_numbers=numbers_in(db, "paid")[:1], reason="x")
    ok(at.run())
    run_job_here(db, job.id)
    ok(at.run())
    assert not at.toast


def test_cancel_in_time_says_how_far_the_job_got_and_too_late_says_nothing_was_canceled(db):
    paid = numbers_in(db, "paid")
    ops = actor(db, OPS)
    queued = jobs.enqueue(db, ops, "cancel", order_numbers=paid[:4], reason="Recall")
    at = app_as(db, OPS, on=JOBS_PAGE, job=queued.id)
    ok(at.button(key="job_cancel").click().run())
    said = " ".join(i.value for i in at.info).replace("\\", "")
    assert "Canceled before it started: none of the 4 orders were touched." in said
    assert not at.success  # never a confirmation of something else

    late = jobs.enqueue(db, ops, "cancel", order_numbers=paid[4:6], reason="Recall")
    at = app_as(db, OPS, on=JOBS_PAGE, job=late.id)
    assert not at.button(key="job_cancel").disabled  # the page saw it queued…
    run_job_here(db, late.id)  # …and it finished before the click arrived
    ok(at.button(key="job_cancel").click().run())
    warned = " ".join(w.value for w in at.warning).replace("\\", "")
    assert f"Job #{late.id} is already completed; there is nothing to cancel." in warned
    assert not any("Cancel recorded" in i.value or "Canceled after" in i.value for i in at.info)
    # what the page does confirm is how the job ended: every order of it moved
    assert [s.value.replace("\\", "") for s in at.success] == [
        f"Job #{late.id} finished: 2 canceled, 0 failed."
    ]
    assert jobs.get_job(db, late.id, actor=ops).cancel_requested is False


def test_endings_look_different_clean_success_failures_and_failure(db):
    ops = actor(db, OPS)
    paid, canceled = numbers_in(db, "paid"), numbers_in(db, "canceled")
    clean = run_job_here(db, jobs.enqueue(db, ops, "fulfill", order_numbers=paid[:1]).id)
    mixed = run_job_here(db, jobs.enqueue(db, ops, "fulfill", order_numbers=[paid[1], canceled[0]]).id)
    failed = run_job_here(db, jobs.enqueue(db, ops, "fulfill", order_numbers=canceled[1:3]).id)
    seen = {}
    for job in (clean, mixed, failed):
        at = app_as(db, OPS, on=JOBS_PAGE, job=job.id)
        seen[job.status] = (
            [s.value for s in at.success],
            [w.value for w in at.warning],
            [e.value for e in at.error],
            [b.proto.label for b in at.get("badge")] if at.get("badge") else [],
        )
    assert seen["completed"][0] and not seen["completed"][1] and not seen["completed"][2]
    assert seen["completed_with_failures"][1] and not seen["completed_with_failures"][0]
    assert seen["failed"][2] and not seen["failed"][0]
    assert "Some orders failed" in seen["completed_with_failures"][1][0]
    assert "No order succeeded" in seen["failed"][2][0]


def test_the_items_list_pages_through_every_order_of_the_job(db):
    ops = actor(db, OPS)
    job = run_job_here(db, jobs.enqueue(db, ops, "fulfill", filters=OrderFilters.parse()).id)
    assert job.total > 100
    at = app_as(db, OPS, on=JOBS_PAGE, job=job.id)
    first = list(at.table[0].value["Order"])
    assert len(first) == 100
    assert any(f"1–100 of {job.total:,}" in c.value for c in at.caption)
    pager = next(e for e in at.get("pagination") if e.key and e.key.startswith("job_items_pager_"))
    pager.set_value(2).run()
    second = list(at.table[0].value["Order"])
    assert second and not set(first) & set(second)
    assert any(f"101–{min(200, job.total):,} of {job.total:,}" in c.value for c in at.caption)


def test_a_mass_cancel_asks_for_a_reason_and_every_order_keeps_it_in_its_timeline(db):
    at = app_as(db, SUPPORT, status="paid")
    numbers = grid_numbers(at)[:2]
    tick(at, 0, 1)
    ok(menu(at).click("cancel").run())
    assert "required" in at.text_area(key="mass_reason").label
    ok(at.button(key="mass_confirm").click().run())  # without a reason: refused at the field
    assert any("Give a reason for this mass Cancel" in e.value for e in at.error)
    assert "mass_back" in {b.key for b in at.button}  # the dialog stays whole
    with db.read() as conn:
        assert conn.execute(select(jobs.jobs.c.id)).first() is None  # nothing queued
    at.text_area(key="mass_reason").input("Customer asked by phone; duplicate order")
    ok(at.button(key="mass_confirm").click().run())  # typed, then confirmed: one click
    with db.read() as conn:
        [job] = conn.execute(select(jobs.jobs).order_by(jobs.jobs.c.id.desc()).limit(1)).all()
    assert job.reason == "Customer asked by phone; duplicate order"
    run_job_here(db, job.id)
    with db.read() as conn:
        notes = conn.execute(
            select(order_events.c.note)
            .join(orders, orders.c.id == order_events.c.order_id)
            .where(orders.c.number.in_(numbers), order_events.c.action == "cancel")
        ).scalars()
        assert ["Customer asked by phone; duplicate order" in n for n in notes] == [True, True]


def test_emails_on_the_jobs_pages_are_plain_text(db):
    job = run_job_here(
        db, jobs.enqueue(db, actor(db, OPS), "fulfill", order_numbers=numbers_in(db, "paid")[:1]).id
    )
    for params in ({}, {"job": job.id}):
        at = app_as(db, OPS, on=JOBS_PAGE, **params)
        assert any(OPS in t.value for t in at.text)  # as text, not Markdown
        markdown = [m.value for m in (*at.markdown, *at.caption)]
        assert not any(OPS in m for m in markdown)  # where Markdown would auto-link it
