"""The one table of legal moves, checked for every status × every action."""

import pytest

from orders_core.errors import OrdersError
from orders_core.status import (
    FINAL_STATUSES,
    Action,
    IllegalMove,
    Status,
    check_bulk_move,
    legal_actions,
    next_status,
    refunds_on,
)

EXPECTED = {
    (Status.CREATED, Action.PAY): Status.PAID,
    (Status.CREATED, Action.CANCEL): Status.CANCELED,
    (Status.PAID, Action.CANCEL): Status.CANCELED,
    (Status.PAID, Action.FULFILL): Status.FULFILLED,
    (Status.FULFILLED, Action.RETURN): Status.RETURNED,
}
ALL_PAIRS = [(s, a) for s in Status for a in Action]


@pytest.mark.parametrize("status,action", ALL_PAIRS, ids=[f"{s.value}-{a.value}" for s, a in ALL_PAIRS])
def test_every_status_and_action_is_either_a_listed_move_or_refused(status, action):
    if (status, action) in EXPECTED:
        assert next_status("ORD-000001", status, action) == EXPECTED[(status, action)]
    else:
        with pytest.raises(IllegalMove) as refused:
            next_status("ORD-000001", status, action)
        assert "ORD-000001" in str(refused.value)
        assert status.label in str(refused.value)


def test_a_refused_move_names_the_order_its_status_and_what_the_action_applies_to():
    with pytest.raises(IllegalMove) as refused:
        next_status("ORD-000123", Status.FULFILLED, Action.CANCEL)
    assert str(refused.value) == "Order ORD-000123 is Fulfilled; Cancel applies to Created or Paid orders"


def test_an_illegal_move_is_a_business_refusal_like_any_other():
    assert issubclass(IllegalMove, OrdersError)


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
def test_canceled_and_returned_are_final(status):
    assert legal_actions(status) == []


def test_only_cancelling_a_paid_order_and_returning_a_fulfilled_one_refund():
    refunding = {(s, a) for s, a in ALL_PAIRS if refunds_on(s, a)}
    assert refunding == {(Status.PAID, Action.CANCEL), (Status.FULFILLED, Action.RETURN)}


def test_mass_cancel_applies_to_paid_orders_only_though_a_single_cancel_may_take_a_created_one():
    assert next_status("ORD-1", Status.CREATED, Action.CANCEL) == Status.CANCELED
    with pytest.raises(IllegalMove) as refused:
        check_bulk_move("ORD-000007", Status.CREATED, Action.CANCEL)
    assert str(refused.value) == "Order ORD-000007 is Created; Cancel applies to Paid orders only"


@pytest.mark.parametrize(
    "action,source",
    [(Action.FULFILL, Status.PAID), (Action.CANCEL, Status.PAID), (Action.RETURN, Status.FULFILLED)],
)
def test_mass_actions_accept_exactly_their_source_status(action, source):
    for status in Status:
        if status == source:
            assert check_bulk_move("ORD-1", status, action) == EXPECTED[(status, action)]
        else:
            with pytest.raises(IllegalMove):
                check_bulk_move("ORD-1", status, action)


def test_legal_actions_follow_the_table():
    assert legal_actions(Status.CREATED) == [Action.PAY, Action.CANCEL]
    assert legal_actions(Status.PAID) == [Action.CANCEL, Action.FULFILL]
    assert legal_actions(Status.FULFILLED) == [Action.RETURN]
