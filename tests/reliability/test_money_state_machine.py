"""Promise 1: no order is refunded twice and no checkout is charged twice, whatever
crashes and retries happen.

A Hypothesis rule-based state machine drives the whole lifecycle on the offline
gateway: checkout with every Stripe test token (with and without a checkout key,
for two customers), pay, fulfil, cancel and return; each money rule also runs with a
fault injected at one gateway method: a crash right after the gateway acted and
before our commit (tests/support/fakes.CrashingGateway: the process dies, its lease
stays), or an outage (FlakyGateway: GatewayUnavailable). Time moves only when the
`time_passes` rule says so, so a retry inside a dead process's lease must be refused
as in progress and a retry after it must finish the interrupted work.

After every step the invariants compare our tables (orders, payments, refunds,
order_events) with the gateway's own ledger (sim_charges, sim_refunds). The move
table the rules expect is written out below, not taken from orders_core.status.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, func, select

import orders_core.charging as charging_module
import orders_core.checkout as checkout_module
import orders_core.customers as customers_module
import orders_core.lifecycle as lifecycle_module
import orders_core.payments.simulated as simulated_module
from orders_core import lifecycle, order_counts
from orders_core.checkout import pay_order, place_order, recover_pending_payments
from orders_core.errors import (
    CardDeclined,
    GatewayUnavailable,
    InProgress,
    OrdersError,
    RefundFailed,
    ValidationError,
)
from orders_core.payments import Gateways
from orders_core.payments.card_tokens import TEST_TOKENS
from orders_core.schema import (
    order_events,
    order_items,
    orders,
    payments,
    refunds,
    sim_charges,
    sim_idempotency_keys,
    sim_refunds,
)
from orders_core.staff import SYSTEM
from orders_core.status import IllegalMove
from tests.reliability.evidence import scan_database, table_checksums
from tests.support.fakes import CrashingGateway, FlakyGateway, SimulatedCrash

LEASE_SECONDS = 60
# Per example: few orders in play at once, so the steps go into their lives rather than
# into checkouts; a new one once others are canceled or returned.
MAX_LIVE_ORDERS = 3
MAX_ORDERS = 8

# The product's move table, as the issue states it (from status, action) -> to status.
LEGAL = {
    ("created", "pay"): "paid",
    ("created", "cancel"): "canceled",
    ("paid", "cancel"): "canceled",
    ("paid", "fulfill"): "fulfilled",
    ("fulfilled", "return"): "returned",
}
REFUNDING = {("paid", "cancel"), ("fulfilled", "return")}
FINAL = {"canceled", "returned"}
ENTERED_AT = {
    "paid": "paid_at",
    "fulfilled": "fulfilled_at",
    "canceled": "canceled_at",
    "returned": "returned_at",
}

SUCCEEDING = sorted(
    t for t, card in TEST_TOKENS.items() if card.decline_code is None and not card.refunds_fail
)
ALL_TOKENS = sorted(TEST_TOKENS)  # declines of every kind, and cards whose refunds fail
# Mostly cards that pay (orders with a life ahead of them), often any test card.
tokens = st.one_of(st.sampled_from(SUCCEEDING), st.sampled_from(SUCCEEDING), st.sampled_from(ALL_TOKENS))

CARTS = [
    (("PASS-USD", 1),),
    (("PASS-EUR", 2),),
    (("PASS-JPY", 1),),
    (("BOX-USD", 1),),
    (("BOX-USD", 2), ("PASS-USD", 3)),
]
carts = st.sampled_from(CARTS)
aims = st.integers(0, 63)  # 0: the drawn order and action as they are; else aim at one that applies
# What applies to an order, by its snapshot: the targets the rules aim at.
PAYABLE = lambda snap: ["pay"] if snap.effective == "created" else []  # noqa: E731
MOVABLE = lambda snap: sorted(a for (s, a) in LEGAL if s == snap.effective and a != "pay")  # noqa: E731
REFUNDABLE = lambda snap: [a for (s, a) in REFUNDING if s == snap.effective]  # noqa: E731
CHARGE_FAULTS = [
    ("crash", "create_payment"),
    ("crash", "confirm_payment"),
    ("crash", "retrieve_payment"),
    ("outage", "create_payment"),
    ("outage", "confirm_payment"),
]
REFUND_FAULTS = [
    ("crash", "list_refunds"),
    ("crash", "retrieve_payment"),
    ("crash", "refund"),
    ("crash", "refund"),
    ("outage", "list_refunds"),
    ("outage", "refund"),
]
CHARGE_CRASH_POINTS = ["create_payment", "confirm_payment", "retrieve_payment"]
REFUND_CRASH_POINTS = ["list_refunds", "retrieve_payment", "refund"]
charge_faults = st.one_of(st.none(), st.sampled_from(CHARGE_FAULTS))  # half the calls meet one
refund_faults = st.one_of(st.none(), st.sampled_from(REFUND_FAULTS))


class TravellingClock:
    """utcnow() for the machine: a microsecond per reading, and a jump when the
    machine says time passes, so a dead process's lease runs out exactly then. Never
    the wall clock: a replayed example sees the same times (Hypothesis shrinks by
    replaying, and a slow machine must not let a lease run out by itself)."""

    START = dt.datetime(2030, 1, 1)

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.now = self.START

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(microseconds=1)
        return self.now


def use_clock(monkeypatch, clock: TravellingClock) -> None:
    for module in (lifecycle_module, checkout_module, charging_module, simulated_module, customers_module):
        monkeypatch.setattr(module, "utcnow", clock)


def wipe_orders(db) -> None:
    """Back to the shop with no orders: every example starts from the same state."""
    with db.write() as conn:
        for table in (
            refunds,
            payments,
            order_events,
            order_items,
            orders,
            sim_refunds,
            sim_charges,
            sim_idempotency_keys,
        ):
            conn.execute(delete(table))


class Snapshot:
    """One order as the database and the gateway's ledger hold it before a step."""

    def __init__(self, order, pays, rows, charges, refunded_refs, now: dt.datetime):
        self.status = order.status
        self.refundable = order.total_amount - order.refunded_amount
        pending_pay = [p for p in pays if p.status == "pending"]
        self.pay_locked = any(p.locked_until is not None and p.locked_until > now for p in pending_pay)
        self.pay_to_settle = len(pending_pay) > 0 and not self.pay_locked
        recovered_paid = any(
            p.gateway_payment_id
            and charges.get(p.gateway_payment_id) is not None
            and charges[p.gateway_payment_id].status == "succeeded"
            for p in pending_pay
            if not (p.locked_until is not None and p.locked_until > now)
        )
        # What the order is once the engine has settled a charge a dead process left.
        self.recovers_to_paid = recovered_paid and self.status == "created"
        self.effective = "paid" if self.recovers_to_paid else self.status
        pending_refund = [r for r in rows if r.status == "pending"]
        self.refund_pending = pending_refund[0] if pending_refund else None
        self.refund_locked = bool(
            self.refund_pending
            and self.refund_pending.locked_until is not None
            and self.refund_pending.locked_until > now
        )
        self.blocked = self.pay_locked or self.refund_locked
        self.refund_in_ledger = bool(
            self.refund_pending and self.refund_pending.idempotency_key in refunded_refs
        )
        succeeded = [charges.get(p.gateway_payment_id) for p in pays if p.status == "succeeded"]
        if recovered_paid:
            succeeded += [
                charges[p.gateway_payment_id]
                for p in pending_pay
                if p.gateway_payment_id and p.gateway_payment_id in charges
            ]
        self.refunds_fail = any(c is not None and c.decline_code == "refund_fail" for c in succeeded)


def snapshots(db, now: dt.datetime) -> dict[str, Snapshot]:
    """Every order's snapshot, from one read of the (few) rows an example makes."""
    with db.read() as conn:
        all_orders = conn.execute(select(orders)).all()
        pays, rows = defaultdict(list), defaultdict(list)
        for p in conn.execute(select(payments)):
            pays[p.order_id].append(p)
        for r in conn.execute(select(refunds)):
            rows[r.order_id].append(r)
        charges = {c.id: c for c in conn.execute(select(sim_charges))}
        refunded_refs = {r[0] for r in conn.execute(select(sim_refunds.c.reference))}
    return {o.number: Snapshot(o, pays[o.id], rows[o.id], charges, refunded_refs, now) for o in all_orders}


def predict_move(before: Snapshot, action: str) -> tuple[str, str]:
    """(outcome, status afterwards) of a move that meets no fault."""
    status = before.effective
    if (status, action) not in LEGAL:
        return "illegal", status
    if before.status == "created" and before.pay_locked:
        return "in_progress", status
    if before.refund_pending is not None:
        if before.refund_locked:
            return "in_progress", status
        if before.refund_pending.action != action:
            return "unfinished", status
    if (
        (status, action) in REFUNDING
        and (before.refundable > 0 or before.recovers_to_paid)
        and before.refunds_fail
        and not before.refund_in_ledger
    ):
        return "refund_failed", status
    return "moved", LEGAL[(status, action)]


def outcome_of(error: BaseException | None) -> str:
    if error is None:
        return "moved"
    if isinstance(error, IllegalMove):
        return "illegal"
    if isinstance(error, InProgress):
        return "in_progress"
    if isinstance(error, RefundFailed):
        return "refund_failed"
    if isinstance(error, GatewayUnavailable):
        return "unavailable"
    if isinstance(error, OrdersError) and "unfinished refund" in str(error):
        return "unfinished"
    return f"unexpected {type(error).__name__}: {error}"


def build_machine(shop, clock: TravellingClock, coverage: Counter):
    db = shop.db

    class MoneyMachine(RuleBasedStateMachine):
        orders = Bundle("orders")

        def __init__(self):
            super().__init__()
            wipe_orders(db)
            clock.reset()
            self.owner: dict[str, object] = {}
            self.keys: dict[tuple[int, str], tuple[tuple, str]] = {}
            self.final: dict[str, str] = {}
            self.seen: dict[str, list[str]] = defaultdict(list)
            self.coverage = coverage

        # -- helpers -------------------------------------------------------------
        def gateways(self, fault) -> Gateways:
            gateways = Gateways(db)
            if fault is None:
                return gateways
            kind, method = fault
            inner = gateways.default
            if kind == "crash":
                return gateways.use(CrashingGateway(inner, crash_after=method))
            return gateways.use(
                FlakyGateway(
                    inner, method, GatewayUnavailable("connection reset by peer", "api_connection_error")
                )
            )

        def aim(self, aim: int, applicable, default):
            """The aim-th (order, action) among those that apply now, if any does."""
            snaps = snapshots(db, clock())
            choices = [(n, a) for n in self.owner if not snaps[n].blocked for a in applicable(snaps[n])]
            return choices[aim % len(choices)] if choices else default

        def note(self, fault, error, before: Snapshot | None = None):
            """What the run went through, so the test can show it covered the hard cases."""
            if isinstance(error, SimulatedCrash):
                self.coverage[f"crash after {fault[1]}"] += 1
            elif fault and isinstance(error, GatewayUnavailable):
                self.coverage[f"outage at {fault[1]}"] += 1
            if before is not None and error is None or isinstance(error, OrdersError):
                if before is not None and before.recovers_to_paid and not isinstance(error, SimulatedCrash):
                    self.coverage["charge of a dead process settled"] += 1
                if before is not None and before.refund_in_ledger and error is None:
                    self.coverage["refund of a dead process adopted"] += 1
                if (
                    before is not None
                    and before.refund_pending is not None
                    and error is None
                    and not before.refund_in_ledger
                ):
                    self.coverage["refund of a dead process resumed"] += 1
            if isinstance(error, InProgress):
                self.coverage["refused inside a live lease"] += 1

        def newest_order(self) -> str | None:
            with db.read() as conn:
                return conn.execute(select(orders.c.number).order_by(orders.c.id.desc()).limit(1)).scalar()

        def status_of(self, number: str) -> str:
            with db.read() as conn:
                return conn.execute(select(orders.c.status).where(orders.c.number == number)).scalar_one()

        # -- rules ---------------------------------------------------------------
        @initialize(target=orders, token=st.sampled_from(SUCCEEDING))
        def a_paid_order(self, token):
            """Every example starts with a paid order, so money goes back from step one."""
            number = place_order(db, shop.customer, items=[("PASS-USD", 2)], token=token).number
            self.owner[number] = shop.customer_actor
            return number

        @precondition(
            lambda self: len(self.owner) < MAX_ORDERS and len(self.owner) - len(self.final) < MAX_LIVE_ORDERS
        )
        @rule(
            target=orders,
            cart=carts,
            token=tokens,
            second_customer=st.booleans(),
            key=st.sampled_from([None, None, "form-1", "form-2"]),
            fault=charge_faults,
            restart_later=st.booleans(),
        )
        def checkout(self, cart, token, second_customer, key, fault, restart_later):
            customer = shop.other if second_customer else shop.customer
            address_id = shop.other_address_id if second_customer else shop.address_id
            shippable = any(code == "BOX-USD" for code, _ in cart)
            earlier = self.keys.get((customer.id, key)) if key else None
            newest_before = self.newest_order()
            sums_before = table_checksums(db) if earlier else None
            error = None
            try:
                order = place_order(
                    db,
                    customer,
                    items=list(cart),
                    token=token,
                    address_id=address_id if shippable else None,
                    checkout_key=key,
                    gateways=self.gateways(fault),
                )
            except SimulatedCrash as crash:
                error, order = crash, None
                if restart_later:
                    self.time_passes()
            except OrdersError as raised:
                error, order = raised, None

            if earlier is not None:  # a checkout key seen before: never a second order
                earlier_cart, earlier_number = earlier
                assert table_checksums(db) == sums_before, "a repeated checkout key wrote"
                if earlier_cart == cart:
                    assert error is None and order.number == earlier_number
                else:
                    assert isinstance(error, ValidationError), error
                    assert "already submitted" in str(error)
                return multiple()

            number = self.newest_order()
            assert number != newest_before, f"checkout made no order: {error!r}"
            self.note(fault, error)
            self.owner[number] = shop.customer_actor if not second_customer else shop.other_actor
            if key:
                self.keys[(customer.id, key)] = (cart, number)
            card = TEST_TOKENS[token]
            if isinstance(error, SimulatedCrash):
                assert self.status_of(number) == "created"
            elif isinstance(error, GatewayUnavailable):
                assert fault and fault[0] == "outage", error
                assert self.status_of(number) == "created"
            elif card.decline_code:
                assert isinstance(error, CardDeclined) and error.code == card.decline_code, error
                assert self.status_of(number) == "created"
            else:
                assert error is None, f"checkout with {token} failed: {error!r}"
                assert order.status == "paid"
            return number

        @rule(
            number=orders,
            token=tokens,
            as_owner=st.booleans(),
            aim=aims,
            fault=charge_faults,
            restart_later=st.booleans(),
        )
        def pay(self, number, token, as_owner, aim, fault, restart_later):
            if aim:  # mostly an order that can still be paid, sometimes any order
                number, _ = self.aim(aim, PAYABLE, default=(number, "pay"))
            self.pay_once(number, token, as_owner, fault, restart_later)

        # A charge interrupted once or several times in a row (a crash right after the
        # gateway acted at each point, before our commit), then retried to the end.
        @rule(
            number=orders,
            token=tokens,
            aim=aims,
            restart_later=st.booleans(),
            crashes=st.lists(st.sampled_from(CHARGE_CRASH_POINTS), min_size=1, max_size=3),
        )
        def pay_interrupted_then_retried(self, number, token, aim, restart_later, crashes):
            number, _ = self.aim(aim, PAYABLE, default=(number, "pay"))
            for point in crashes:
                if not self.pay_once(number, token, False, ("crash", point), restart_later):
                    return  # refused, or it went through without reaching that point
                check_books(db, self.final, self.seen)
            if self.pay_once(number, token, True, None, False):  # inside the dead one's lease
                self.time_passes()
                self.pay_once(number, token, True, None, False)

        @rule(
            number=orders,
            action=st.sampled_from(["fulfill", "cancel", "return"]),
            aim=aims,
            fault=refund_faults,
            restart_later=st.booleans(),
        )
        def move(self, number, action, aim, fault, restart_later):
            if aim:  # mostly a move that applies to its order, sometimes any move
                number, action = self.aim(aim, MOVABLE, default=(number, action))
            self.move_once(number, action, fault, restart_later)

        # A refund interrupted once or several times in a row, then retried to the end. A
        # brand-new refund key goes straight to the refund; the look-ups (list_refunds,
        # retrieve_payment) happen when an interrupted one is resumed: hence sequences,
        # and an outage first (a pending refund the gateway never saw).
        @rule(
            number=orders,
            aim=aims,
            restart_later=st.booleans(),
            outage_first=st.booleans(),
            crashes=st.lists(st.sampled_from(REFUND_CRASH_POINTS), min_size=1, max_size=3),
        )
        def refund_interrupted_then_retried(self, number, aim, restart_later, outage_first, crashes):
            number, action = self.aim(aim, REFUNDABLE, default=(number, "cancel"))
            faults = [("outage", "refund")] * outage_first + [("crash", c) for c in crashes]
            for fault in faults:
                outcome = self.move_once(number, action, fault, restart_later)
                if outcome == "in_progress":  # the last crash's lease: wait it out
                    self.time_passes()
                    outcome = self.move_once(number, action, fault, restart_later)
                if outcome not in ("crashed", "unavailable"):
                    return
                check_books(db, self.final, self.seen)
            if self.move_once(number, action, None, False) == "in_progress":
                self.time_passes()
                self.move_once(number, action, None, False)

        # -- one call with its expected outcome ------------------------------------
        def pay_once(self, number, token, as_owner, fault, restart_later):
            """pay_order once; True if it crashed or was refused as in progress."""
            before = snapshots(db, clock())[number]
            actor = self.owner[number] if as_owner else SYSTEM
            error = None
            try:
                pay_order(db, actor, number, token=token, gateways=self.gateways(fault))
            except SimulatedCrash as crash:
                error = crash
                if restart_later:  # the retry comes from a process started after the lease
                    self.time_passes()
            except OrdersError as raised:
                error = raised
            after = self.status_of(number)
            self.note(fault, error, before)
            if isinstance(error, SimulatedCrash):
                assert after in (before.status, before.effective)
                return True
            if before.recovers_to_paid:
                # An interrupted attempt had charged the card: settled, never charged again
                # (unless the fault struck the recovery itself).
                assert after == "paid" or (fault and isinstance(error, GatewayUnavailable)), error
                return False
            if before.effective != "created":
                assert isinstance(error, IllegalMove), error
            elif before.pay_locked:
                assert isinstance(error, InProgress), error
            elif isinstance(error, GatewayUnavailable):
                assert fault and fault[0] == "outage", error
            elif TEST_TOKENS[token].decline_code:
                assert isinstance(error, CardDeclined), error
            else:
                assert error is None, f"paying with {token} failed: {error!r}"
            expected = "paid" if error is None else before.effective
            assert after == expected, (after, expected, error)
            return isinstance(error, InProgress)

        def move_once(self, number, action, fault, restart_later) -> str:
            """One fulfil, cancel or return; its outcome ("crashed", "moved", ...)."""
            before = snapshots(db, clock())[number]
            predicted, predicted_status = predict_move(before, action)
            sums_before = table_checksums(db) if predicted in ("illegal", "in_progress") else None
            error = None
            try:
                getattr(lifecycle, f"{action}_order")(db, SYSTEM, number, gateways=self.gateways(fault))
            except SimulatedCrash as crash:
                error = crash
                if restart_later:  # the retry comes from a process started after the lease
                    self.time_passes()
            except OrdersError as raised:
                error = raised
            after = self.status_of(number)
            self.note(fault, error, before)
            if isinstance(error, SimulatedCrash):
                assert fault and fault[0] == "crash"
                assert after in (before.status, before.effective), after
                return "crashed"
            outcome = outcome_of(error)
            if outcome == "unavailable":
                assert fault and fault[0] == "outage", error
                assert after in (before.status, before.effective), after
                return outcome
            assert outcome == predicted, (
                f"{action} on {number} ({before.status}, effective {before.effective}): "
                f"expected {predicted}, got {outcome}"
            )
            assert after == predicted_status, (after, predicted_status)
            if sums_before is not None and not before.pay_to_settle:
                assert table_checksums(db) == sums_before, f"a refused {action} wrote"
            return outcome

        @rule()
        def time_passes(self):
            clock.advance(LEASE_SECONDS + 1)

        # -- invariants ----------------------------------------------------------
        @invariant()
        def books_agree_with_the_gateway(self):
            check_books(db, self.final, self.seen)

        def teardown(self):
            # Everything interrupted converges once the leases are over and the
            # interrupted action is run again: nothing is left pending, and the
            # gateway's ledger and ours agree to the cent.
            clock.advance(LEASE_SECONDS + 1)
            with db.read() as conn:
                stuck_pay = [
                    r[0]
                    for r in conn.execute(select(payments.c.order_id).where(payments.c.status == "pending"))
                ]
                stuck_refunds = conn.execute(
                    select(refunds.c.action, orders.c.number)
                    .join(orders, orders.c.id == refunds.c.order_id)
                    .where(refunds.c.status == "pending")
                ).all()
            recover_pending_payments(db, Gateways(db), stuck_pay)
            for action, number in stuck_refunds:
                try:
                    getattr(lifecycle, f"{action}_order")(db, SYSTEM, number)
                except RefundFailed:
                    pass
            check_books(db, self.final, self.seen, settled=True)
            with db.read() as conn:
                assert (
                    conn.execute(
                        select(func.count()).select_from(refunds).where(refunds.c.status == "pending")
                    ).scalar_one()
                    == 0
                )
                assert (
                    conn.execute(
                        select(func.count()).select_from(payments).where(payments.c.status == "pending")
                    ).scalar_one()
                    == 0
                )
            assert scan_database(db) == []

    return MoneyMachine


def check_books(db, final: dict, seen: dict, settled: bool = False) -> None:
    """The invariants, over every order, every payment and refund, and the ledger."""
    with db.read() as conn:
        all_orders = conn.execute(select(orders).order_by(orders.c.id)).all()
        pays = conn.execute(select(payments)).all()
        our_refunds = conn.execute(select(refunds)).all()
        events = conn.execute(select(order_events).order_by(order_events.c.id)).all()
        charges = {c.id: c for c in conn.execute(select(sim_charges))}
        ledger_refunds = conn.execute(select(sim_refunds)).all()

    # The counts behind the orders page's tabs, kept by the database, agree with the orders,
    # and so does each order's SKU rows (order_skus) that the SKU views read.
    assert order_counts.mismatches(db) == []
    assert order_counts.sku_row_mismatches(db) == []

    by_gateway_id = defaultdict(list)
    for p in pays:
        if p.gateway_payment_id:
            by_gateway_id[p.gateway_payment_id].append(p)
    refund_by_key = {r.idempotency_key: r for r in our_refunds}

    # The ledger: every charge that took money is one of our payment rows, succeeded or
    # still pending (a crash after the charge); no checkout is charged twice.
    succeeded_charges = [c for c in charges.values() if c.status == "succeeded"]
    per_reference = Counter(c.reference for c in succeeded_charges)
    assert all(n == 1 for n in per_reference.values()), f"charged twice: {per_reference}"
    for charge in succeeded_charges:
        rows = by_gateway_id.get(charge.id, [])
        assert len(rows) == 1, f"charge {charge.id} is in {len(rows)} payment rows"
        assert rows[0].status in (("succeeded",) if settled else ("succeeded", "pending")), rows[0]
        assert rows[0].amount == charge.amount and rows[0].currency == charge.currency
    # ... and every refund in the ledger is one of ours, made once per key.
    assert len({r.reference for r in ledger_refunds}) == len(ledger_refunds), "a key refunded twice"
    for refund in ledger_refunds:
        ours = refund_by_key.get(refund.reference)
        assert ours is not None, f"the gateway holds a refund we know nothing of: {refund.reference}"
        assert ours.status in (("succeeded",) if settled else ("succeeded", "pending")), ours
        assert ours.amount == refund.amount
        if ours.status == "succeeded":
            assert ours.gateway_refund_id == refund.id
    ledger_refund_refs = {r.reference for r in ledger_refunds}
    for ours in our_refunds:
        if ours.status == "succeeded":
            assert ours.idempotency_key in ledger_refund_refs, f"refund {ours.id} is not at the gateway"
        if ours.status == "failed":
            assert ours.idempotency_key not in ledger_refund_refs, f"failed refund {ours.id} took money"

    for order in all_orders:
        mine = [p for p in pays if p.order_id == order.id]
        succeeded = [p for p in mine if p.status == "succeeded"]
        taken = sum(
            charges[p.gateway_payment_id].amount
            for p in mine
            if p.gateway_payment_id
            and charges.get(p.gateway_payment_id) is not None
            and charges[p.gateway_payment_id].status == "succeeded"
        )
        charge_ids = {p.gateway_payment_id for p in mine if p.gateway_payment_id}
        given_back = [r for r in ledger_refunds if r.charge_id in charge_ids]
        refunded_at_gateway = sum(r.amount for r in given_back)
        my_refunds = [r for r in our_refunds if r.order_id == order.id]
        where = f"{order.number} ({order.status})"

        # Refunded <= paid, at the gateway and in our books; never refunded twice.
        assert len(given_back) <= 1, f"{where} refunded {len(given_back)} times at the gateway"
        assert refunded_at_gateway <= taken, f"{where}: refunded {refunded_at_gateway} > paid {taken}"
        assert 0 <= order.refunded_amount <= order.total_amount, where
        assert order.refunded_amount == sum(r.amount for r in my_refunds if r.status == "succeeded")
        in_flight = sum(
            r.amount for r in my_refunds if r.status == "pending" and r.idempotency_key in ledger_refund_refs
        )
        assert refunded_at_gateway == order.refunded_amount + in_flight, where
        assert sum(1 for p in mine if p.status == "pending") <= 1, where
        assert sum(1 for r in my_refunds if r.status == "pending") <= 1, where

        # What each status means for the money.
        assert len(succeeded) <= 1, f"{where} has {len(succeeded)} successful payments"
        if succeeded:
            assert succeeded[0].amount == order.total_amount, where
        if order.status == "created":
            assert not succeeded and order.refunded_amount == 0, where
        elif order.status in ("paid", "fulfilled"):
            assert len(succeeded) == 1 and order.refunded_amount == 0, where
        elif order.status == "returned":
            assert len(succeeded) == 1 and order.refunded_amount == order.total_amount, where
        elif order.status == "canceled":
            assert order.refunded_amount == (order.total_amount if succeeded else 0), where

        # Canceled and returned are final.
        if order.number in final:
            assert order.status == final[order.number], f"{where} left final {final[order.number]}"
        if order.status in FINAL:
            final[order.number] = order.status

        # Every status change has exactly one event, and nothing else moves money.
        mine_events = [e for e in events if e.order_id == order.id]
        assert not [e for e in mine_events if e.action in ("payment_received", "refund")], where
        chain = [e for e in mine_events if e.to_status is not None]
        assert (chain[0].action, chain[0].from_status, chain[0].to_status) == ("create", None, "created")
        for earlier, later in zip(chain, chain[1:]):
            assert earlier.to_status == later.from_status, f"{where}: broken chain"
            assert LEGAL.get((later.from_status, later.action)) == later.to_status, (
                f"{where}: event {later.action} {later.from_status}->{later.to_status}"
            )
        assert chain[-1].to_status == order.status, f"{where}: last event says {chain[-1].to_status}"
        entered = [e.to_status for e in chain]
        for status, column in ENTERED_AT.items():
            assert (getattr(order, column) is not None) == (status in entered), f"{where}: {column}"
        history = seen[order.number]
        if not history or history[-1] != order.status:
            history.append(order.status)
        position = iter(entered)
        assert all(status in position for status in history), (
            f"{where}: statuses seen {history} but events say {entered}"
        )


def run_machine(shop, monkeypatch, *, max_examples: int, steps: int, derandomize: bool = False) -> Counter:
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", str(LEASE_SECONDS))
    clock = TravellingClock()
    use_clock(monkeypatch, clock)
    coverage: Counter = Counter()
    run_state_machine_as_test(
        build_machine(shop, clock, coverage),
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            derandomize=derandomize,
            # One failure shrunk well beats five shrunk for minutes (and past pytest's timeout).
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    return coverage


# The hard cases a run must have gone through at least once, or it proved little.
MUST_COVER = [
    "crash after confirm_payment",
    "crash after refund",
    "crash after list_refunds",
    "charge of a dead process settled",
    "refund of a dead process adopted",
    "refund of a dead process resumed",
    "refused inside a live lease",
]


@pytest.mark.quiet_sql
def test_no_order_is_refunded_twice_and_no_checkout_charged_twice_on_sqlite(sqlite_shop, monkeypatch):
    """The same 300 programs every run (derandomized), shown to reach every hard case:
    Hypothesis draws a different subset of rules per example (swarm testing), so a
    random run of this size may miss one, and a check that sometimes fails is no check.
    If a change to the machine or to Hypothesis makes it miss one, raise max_examples (the
    draws depend on the machine's source: reformatting it moved them, and 80 stopped
    reaching "charge of a dead process settled"; 200 reached it again, 300 leaves room)."""
    coverage = run_machine(sqlite_shop, monkeypatch, max_examples=300, steps=10, derandomize=True)
    missing = [case for case in MUST_COVER if not coverage[case]]
    assert not missing, f"the run never reached {missing}; it saw {dict(coverage)}"


@pytest.mark.quiet_sql
def test_new_random_programs_each_run_on_sqlite(sqlite_shop, monkeypatch):
    """Fresh programs every run: over many CI runs this explores far beyond the fixed set."""
    run_machine(sqlite_shop, monkeypatch, max_examples=40, steps=10)


@pytest.mark.postgres
@pytest.mark.quiet_sql
def test_no_order_is_refunded_twice_and_no_checkout_charged_twice_on_postgresql(postgres_db, monkeypatch):
    from tests.reliability.shop import build_shop

    run_machine(build_shop(postgres_db), monkeypatch, max_examples=20, steps=10)
