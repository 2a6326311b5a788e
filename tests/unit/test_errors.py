"""Errors carry their facts as attributes, so callers never parse message text."""

from orders_core.errors import CardDeclined, ExportFailed, GatewayUnavailable, OrdersError, RefundFailed
from orders_core.status import Action, IllegalMove, Status


def test_a_payment_error_names_its_order_as_an_attribute():
    declined = CardDeclined(
        "Payment for order ORD-000042 was declined", "card_declined", order_number="ORD-000042"
    )
    assert (declined.order_number, declined.code) == ("ORD-000042", "card_declined")
    assert GatewayUnavailable("down", order_number="ORD-000007").order_number == "ORD-000007"
    assert RefundFailed("no").order_number is None


def test_an_illegal_move_keeps_its_reason_apart_from_the_order():
    refusal = IllegalMove("ORD-000001", Status.FULFILLED, Action.CANCEL)
    assert refusal.reason == "Cancel applies to Created or Paid orders"
    assert str(refusal) == "Order ORD-000001 is Fulfilled; Cancel applies to Created or Paid orders"


def test_an_export_failure_is_a_business_refusal_the_cli_exits_1_on():
    assert issubclass(ExportFailed, OrdersError)
