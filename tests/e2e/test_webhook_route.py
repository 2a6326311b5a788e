"""POST /webhooks/stripe on the real server (`streamlit run app.py`, its embedded
worker on): events signed with Stripe's scheme (`Stripe-Signature: t=...,v1=...`,
HMAC-SHA256 with the endpoint's secret), each type, a replay, a bad signature, a
stale timestamp, a duplicate, an older event after a newer one, an unknown payment,
an oversized body; the database checked after each. Then localstripe delivers its
own webhooks to the server: a confirmed PaymentIntent whose answer we lost pays the
order end to end."""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orders_core import db as orders_db
from orders_core import demo
from orders_core.schema import disputes, orders, payments, products, refunds, skus, stripe_events
from tests.support import stripe_events as stripe
from tests.support.app_server import app_server

pytestmark = [pytest.mark.slow]

SECRET = "whsec_test_" + "a1b2c3" * 5
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(base: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        base + "/webhooks/stripe",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with DIRECT.open(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def send(base: str, evt: dict, *, secret: str = SECRET, timestamp: int | None = None) -> tuple[int, dict]:
    body = stripe.body_of(evt)
    return post(base, body, {"Stripe-Signature": stripe.signature(body, secret, timestamp=timestamp)})


def inbox(db, event_id: str | None = None):
    with db.read() as conn:
        query = select(stripe_events)
        if event_id:
            query = query.where(stripe_events.c.event_id == event_id)
        return conn.execute(query.order_by(stripe_events.c.id)).all()


def processed(db, event_id: str, timeout: float = 20.0):
    """The event's inbox row once the server's worker has applied it (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = inbox(db, event_id)
        if rows and rows[0].processed_at is not None:
            return rows[0]
        time.sleep(0.1)
    raise AssertionError(f"event {event_id} was not applied within {timeout}s: {inbox(db, event_id)}")


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("webhook-data")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    demo.seed(orders_db.open_database(url), orders=30, random_seed=5)
    orders_db.forget_databases()
    with app_server(url, data_dir, ORDERS_EMBEDDED_WORKER="1", STRIPE_WEBHOOK_SECRET=SECRET) as base:
        yield base, orders_db.open_database(url), data_dir
    orders_db.forget_databases()


def paid_orders(db, n: int = 1) -> list[tuple[int, str, str, int]]:
    """(order id, number, PaymentIntent id, total) of Paid orders with no refund, dispute or event yet."""
    with db.read() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(orders.c.id, orders.c.number, payments.c.gateway_payment_id, orders.c.total_amount)
                .join(payments, payments.c.order_id == orders.c.id)
                .where(
                    orders.c.status == "paid",
                    payments.c.status == "succeeded",
                    orders.c.refunded_amount == 0,
                    ~orders.c.id.in_(select(disputes.c.order_id)),
                    ~orders.c.id.in_(
                        select(stripe_events.c.order_id).where(stripe_events.c.order_id.is_not(None))
                    ),
                )
                .order_by(orders.c.id.desc())
                .limit(n)
            )
        ]


# -- refused: nothing stored ------------------------------------------------------------------
def test_an_unsigned_request_is_refused_and_nothing_is_stored(site):
    base, db, _ = site
    before = len(inbox(db))
    evt = stripe.event("customer.created", {"id": "cus_1"})
    assert post(base, stripe.body_of(evt))[0] == 400
    assert len(inbox(db)) == before


def test_a_request_signed_with_another_secret_is_refused(site):
    base, db, _ = site
    before = len(inbox(db))
    status, answer = send(base, stripe.event("customer.created", {"id": "cus_1"}), secret="whsec_wrong")
    assert status == 400 and "signature" in answer["error"]
    assert len(inbox(db)) == before


def test_a_tampered_body_is_refused(site):
    base, db, _ = site
    before = len(inbox(db))
    evt = stripe.event("customer.created", {"id": "cus_1"})
    header = stripe.signature(stripe.body_of(evt), SECRET)
    tampered = stripe.body_of({**evt, "type": "charge.dispute.created"})
    assert post(base, tampered, {"Stripe-Signature": header})[0] == 400
    assert len(inbox(db)) == before


def test_a_signature_older_than_five_minutes_is_refused(site):
    base, db, _ = site
    before = len(inbox(db))
    status, answer = send(
        base, stripe.event("customer.created", {"id": "cus_1"}), timestamp=int(time.time()) - 301
    )
    assert status == 400 and "too old" in answer["error"]
    assert len(inbox(db)) == before


def test_a_signed_body_that_is_not_a_stripe_event_is_refused(site):
    base, db, _ = site
    before = len(inbox(db))
    for body in (b"{not json", json.dumps({"id": "evt_1", "type": "x"}).encode(), b"[]"):
        assert post(base, body, {"Stripe-Signature": stripe.signature(body, SECRET)})[0] == 400
    assert len(inbox(db)) == before


def test_an_oversized_body_is_refused_before_it_is_read(site):
    base, db, _ = site
    before = len(inbox(db))
    evt = stripe.event("customer.created", {"id": "cus_1", "padding": "x" * 600_000})
    body = stripe.body_of(evt)
    # Only the headers are sent: the answer comes before a byte of the body is read. (Sending
    # the body too races the server's close against the unread bytes: a reset, not an answer.)
    connection = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(base).port, timeout=15)
    connection.putrequest("POST", "/webhooks/stripe")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(len(body)))
    connection.putheader("Stripe-Signature", stripe.signature(body, SECRET))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()
    assert len(inbox(db)) == before


def test_an_oversized_body_without_a_length_is_cut_off_while_it_is_read(site):
    base, db, _ = site
    before = len(inbox(db))
    connection = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(base).port, timeout=15)
    connection.putrequest("POST", "/webhooks/stripe")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Stripe-Signature", stripe.signature(b"x", SECRET))
    connection.endheaders()
    chunk = b"x" * 65_536
    with contextlib.suppress(OSError):  # the server may answer and close before the end
        for _ in range(12):  # 768 KiB, no Content-Length
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
    assert connection.getresponse().status == 413
    connection.close()
    assert len(inbox(db)) == before


def test_the_endpoint_needs_no_session_or_csrf_token(site):
    base, _, _ = site
    status, answer = send(base, stripe.event("customer.created", {"id": "cus_2"}))  # no cookies at all
    assert (status, answer["received"]) == (200, True)


# -- accepted: stored once, applied by the worker ---------------------------------------------
def test_a_duplicate_and_a_replay_are_acknowledged_and_stored_once(site):
    base, db, _ = site
    [(order_id, number, pi_id, total)] = paid_orders(db)
    evt = stripe.event("charge.dispute.created", stripe.dispute("dp_dup_1", pi_id, amount=total))
    body = stripe.body_of(evt)
    header = stripe.signature(body, SECRET)
    assert post(base, body, {"Stripe-Signature": header}) == (200, {"received": True, "duplicate": False})
    assert processed(db, evt["id"]).outcome == "applied"
    # Stripe retries the same delivery, and an attacker replays the captured request.
    assert post(base, body, {"Stripe-Signature": header}) == (200, {"received": True, "duplicate": True})
    assert send(base, evt)[1]["duplicate"] is True
    assert len(inbox(db, evt["id"])) == 1
    with db.read() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(disputes).where(disputes.c.order_id == order_id)
            ).scalar_one()
            == 1
        )


def test_a_dispute_its_updates_out_of_order_and_its_close(site):
    base, db, _ = site
    [(order_id, number, pi_id, total)] = paid_orders(db)
    t = int(time.time())
    opened = stripe.event(
        "charge.dispute.created", stripe.dispute("dp_seq_1", pi_id, amount=total), created=t - 30
    )
    closed = stripe.event(
        "charge.dispute.closed",
        stripe.dispute("dp_seq_1", pi_id, amount=total, status="lost"),
        created=t - 10,
    )
    late = stripe.event(
        "charge.dispute.updated",
        stripe.dispute("dp_seq_1", pi_id, amount=total, status="under_review"),
        created=t - 20,
    )
    for evt, outcome in ((opened, "applied"), (closed, "applied"), (late, "stale")):
        assert send(base, evt)[0] == 200
        row = processed(db, evt["id"])
        assert (row.outcome, row.order_id) == (outcome, order_id)
        with db.read() as conn:
            status = conn.execute(
                select(disputes.c.status).where(disputes.c.gateway_dispute_id == "dp_seq_1")
            ).scalar_one()
        assert status == ("needs_response" if evt is opened else "lost")


def test_a_refund_made_in_the_dashboard_is_recorded_and_the_order_flagged(site):
    base, db, _ = site
    [(order_id, number, pi_id, total)] = paid_orders(db)
    evt = stripe.event("refund.created", stripe.refund("re_dash_1", pi_id, amount=200, currency="usd"))
    assert send(base, evt)[0] == 200
    assert processed(db, evt["id"]).outcome == "applied"
    with db.read() as conn:
        order = conn.execute(select(orders).where(orders.c.id == order_id)).one()
        [row] = conn.execute(select(refunds).where(refunds.c.order_id == order_id)).all()
    assert order.refunded_amount == 200 and order.needs_attention
    assert (row.origin, row.gateway_refund_id, row.status) == ("external", "re_dash_1", "succeeded")
    # A newer refund.updated, then the refund.created of before it arriving late.
    t = int(time.time())
    newer = stripe.event(
        "refund.updated", stripe.refund("re_dash_1", pi_id, amount=200, status="canceled"), created=t + 5
    )
    older = stripe.event(
        "refund.updated", stripe.refund("re_dash_1", pi_id, amount=200, status="succeeded"), created=t - 60
    )
    send(base, newer)
    assert processed(db, newer["id"]).outcome == "applied"
    send(base, older)
    assert processed(db, older["id"]).outcome == "stale"
    with db.read() as conn:
        assert conn.execute(select(orders.c.refunded_amount).where(orders.c.id == order_id)).scalar_one() == 0
        assert (
            conn.execute(select(refunds.c.status).where(refunds.c.order_id == order_id)).scalar_one()
            == "canceled"
        )


def test_payment_events_for_an_order_already_paid_and_a_decline(site):
    base, db, _ = site
    [(order_id, number, pi_id, total)] = paid_orders(db)
    succeeded = stripe.event("payment_intent.succeeded", stripe.payment_intent(pi_id, amount=total))
    send(base, succeeded)
    assert processed(db, succeeded["id"]).outcome == "no_change"
    failed = stripe.event(
        "payment_intent.payment_failed",
        stripe.payment_intent(pi_id, decline_code="expired_card"),
        created=int(time.time()) + 1,
    )
    send(base, failed)
    assert processed(db, failed["id"]).outcome == "applied"
    from orders_core.queries import read_order

    notes = [e.note for e in read_order(db, number).events if e.kind == "payment_failed"]
    assert any("decline code expired_card" in n for n in notes)
    assert read_order(db, number).status == "paid"


def test_an_event_for_an_unknown_payment_is_kept_as_unmatched(site):
    base, db, _ = site
    evt = stripe.event("refund.created", stripe.refund("re_nobody", "pi_not_ours", amount=100))
    assert send(base, evt)[0] == 200
    row = processed(db, evt["id"])
    assert (row.outcome, row.order_id) == ("unmatched", None)
    with db.read() as conn:
        assert conn.execute(select(refunds).where(refunds.c.gateway_refund_id == "re_nobody")).first() is None


def test_without_a_secret_the_endpoint_refuses_with_503(monkeypatch):
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from orders_web.routes import routes

    client = TestClient(Starlette(routes=routes()))
    evt = stripe.event("customer.created", {"id": "cus_1"})
    response = client.post(
        "/webhooks/stripe", content=stripe.body_of(evt), headers={"Stripe-Signature": "t=1,v1=00"}
    )
    assert response.status_code == 503 and "STRIPE_WEBHOOK_SECRET" in response.json()["error"]


def test_the_server_log_never_holds_the_secret(site):
    _, _, data_dir = site
    for log in data_dir.glob("streamlit-*.log"):
        assert SECRET not in log.read_text(errors="replace")


# -- localstripe calls us ---------------------------------------------------------------------
@pytest.mark.stripe
def test_localstripe_delivers_payment_intent_succeeded_and_the_order_whose_answer_was_lost_is_paid(
    localstripe_url, sqlite_template, tmp_path, monkeypatch
):
    from orders_core import customers
    from orders_core.checkout import place_order
    from orders_core.payments import Gateways
    from tests.support.fakes import CrashingGateway, SimulatedCrash

    path = tmp_path / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    environment = {
        "ORDERS_PAYMENT_GATEWAY": "stripe",
        "STRIPE_API_KEY": "sk_test_localstripe",
        "STRIPE_API_BASE": localstripe_url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "ORDERS_PAYMENT_LEASE_SECONDS": "0",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    db = orders_db.open_database(url)
    demo.seed(db, orders=0, random_seed=1)
    with app_server(
        url, tmp_path, ORDERS_EMBEDDED_WORKER="1", STRIPE_WEBHOOK_SECRET=SECRET, **environment
    ) as base:
        port = urllib.parse.urlsplit(base).port
        register = urllib.request.Request(
            f"{localstripe_url}/_config/webhooks/orders-desk",
            data=json.dumps(
                {
                    "url": f"http://127.0.0.1:{port}/webhooks/stripe",
                    "secret": SECRET,
                    "events": ["payment_intent.succeeded", "payment_intent.payment_failed"],
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        assert DIRECT.open(register, timeout=10).status == 200

        customer = customers.sign_in(db, email=demo.DEMO_CUSTOMER_EMAIL, password=demo.DEMO_PASSWORD)
        with db.read() as conn:  # a digital item: nothing to ship, no address needed
            sku = (
                conn.execute(
                    select(skus.c.code)
                    .join(products, products.c.id == skus.c.product_id)
                    .where(skus.c.active.is_(True), skus.c.currency == "usd", products.c.shippable.is_(False))
                    .order_by(skus.c.id)
                )
                .scalars()
                .first()
            )
        crashing = CrashingGateway(Gateways(db).default, crash_after="confirm_payment")
        with pytest.raises(SimulatedCrash):  # localstripe charged the card; we never heard
            place_order(
                db, customer, items=[(sku, 1)], token="pm_card_visa", gateways=Gateways(db).use(crashing)
            )
        with db.read() as conn:
            order_id, pi_id = conn.execute(select(payments.c.order_id, payments.c.gateway_payment_id)).one()
            assert (
                conn.execute(select(orders.c.status).where(orders.c.id == order_id)).scalar_one() == "created"
            )

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = [r for r in inbox(db) if r.object_id == pi_id and r.processed_at is not None]
            if rows:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"localstripe's webhook for {pi_id} was not applied: {inbox(db)}")
        [row] = rows
        assert (row.type, row.outcome, row.order_id, row.source) == (
            "payment_intent.succeeded",
            "applied",
            order_id,
            "stripe",
        )
        with db.read() as conn:
            assert conn.execute(select(orders.c.status).where(orders.c.id == order_id)).scalar_one() == "paid"
            assert conn.execute(select(payments.c.status)).scalars().all() == ["succeeded"]
