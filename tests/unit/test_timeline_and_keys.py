"""The wording of the timeline's money notes and the shape of idempotency keys: one
function each, shared by the services and the demo seed."""

from orders_core.idempotency_keys import charge_key, refund_key
from orders_core.status import Action
from orders_core.timeline import EventKind, charged_note, event_row, refunded_note


def test_keys_name_the_order_the_kind_of_money_move_and_the_attempt():
    assert charge_key("ORD-000123", 1) == "ORD-000123:charge:1"
    assert refund_key("ORD-000123", 2) == "ORD-000123:refund:2"


def test_a_charge_note_names_the_amount_the_gateway_and_its_payment_id():
    assert charged_note("$5.00", "simulated", "pi_sim_1") == "Charged $5.00 via simulated (pi_sim_1)"


def test_a_refund_note_follows_the_staff_reason_on_its_own_line():
    assert refunded_note("$5.00", "re_1") == "Refunded $5.00 (re_1)"
    assert refunded_note("$5.00", "re_1", "Out of stock") == "Out of stock\nRefunded $5.00 (re_1)"


def test_a_status_move_is_recorded_under_its_own_name_and_unknown_kinds_are_refused():
    assert [EventKind.of_move(a) for a in (Action.FULFILL, Action.CANCEL, Action.RETURN)] == [
        EventKind.FULFILL,
        EventKind.CANCEL,
        EventKind.RETURN,
    ]
    row = event_row(1, "ops@example.test", EventKind.NOTE, None, None, "Called", at=None)
    assert row["action"] == "note" and row["from_status"] is None
    try:
        event_row(1, "x", "teleport", None, None, at=None)
    except ValueError:
        pass
    else:
        raise AssertionError("an unknown event kind was accepted")
