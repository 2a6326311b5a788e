"""One order (?number=ORD-000123): status, customer, items, shipping, payment, refunds
and timeline; the moves legal from this status that this role may make, each confirmed
in words; staff notes.

Text that people typed (names, addresses, notes, reasons) is shown with st.text and
dataframes, never as Markdown or HTML. Rules live in orders_core: legal moves come
from status.legal_actions, permissions from the signed-in Actor, and the services
check both again."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from orders_core import checkout, lifecycle, queries
from orders_core.errors import CardDeclined, InvalidToken, NotFound, OrdersError
from orders_core.order_detail import OrderDetail, OrderEvent, PaymentAttempt
from orders_core.payments.card_tokens import DECLINE_MESSAGES
from orders_core.staff import ACTION_PERMISSIONS, Permission
from orders_core.status import Action, PaymentStatus, Status, legal_actions, refunds_on
from orders_core.timeline import EventKind
from pages.ui import card_tokens, display, links, orders_view, payment_events, resources, session, statuses

CONFIRM = "order_confirm"  # {"number", "action", "status"} while a confirmation is open
FLASH = "order_flash"  # {"number", "text"} after a move or a note
NOTE = "order_note_text"
NOTE_ERROR = "order_note_error"
PAY_FAILED = "order_pay_failed"  # {"number", "reason", "code"} after a declined charge
PAY_TOKEN = "order_pay_token"

MOVES = {
    Action.FULFILL: lifecycle.fulfill_order,
    Action.CANCEL: lifecycle.cancel_order,
    Action.RETURN: lifecycle.return_order,
}
EVENT_TITLES = {
    EventKind.CREATE: "Order placed",
    EventKind.PAY: "Paid",
    EventKind.PAYMENT_RECEIVED: "Payment received",
    EventKind.PAYMENT_FAILED: "Payment failed",
    EventKind.FULFILL: "Fulfilled",
    EventKind.CANCEL: "Canceled",
    EventKind.RETURN: "Returned",
    EventKind.NOTE: "Staff note",
    EventKind.REFUND: "Refund recorded",
    EventKind.REFUND_FAILED: "Refund failed",
    EventKind.EXTERNAL_REFUND: "Refunded outside Orders Desk",
    EventKind.DISPUTE: "Dispute",
    EventKind.ATTENTION: "Needs attention",
}
ACTION_ICONS = {
    Action.FULFILL: ":material/local_shipping:",
    Action.CANCEL: ":material/block:",
    Action.RETURN: ":material/undo:",
}


def when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") + " UTC" if value else "—"


def consequence(detail: OrderDetail, action: Action) -> tuple[str, str]:
    """(what will happen, the confirm button's label), in words."""
    number, status = detail.number, detail.status
    refund = detail.refundable if refunds_on(status, action) else 0
    money = display.money(refund, detail.currency)
    if action == Action.FULFILL:
        return (
            f"{number} will be marked Fulfilled (shipped to the customer). No money moves.",
            "Mark as fulfilled",
        )
    if action == Action.CANCEL and refund:
        return (
            f"{number} will be canceled and {money} refunded to the customer's card.",
            f"Cancel and refund {money} to the card",
        )
    if action == Action.CANCEL:
        return (f"{number} will be canceled. It was never paid, so nothing is refunded.", "Cancel the order")
    if action == Action.RETURN and refund:
        return (
            f"{number} will be marked Returned and {money} refunded to the customer's card.",
            f"Return and refund {money} to the card",
        )
    return f"{number} will be marked {action.label}ed.", f"{action.label} the order"


def available_moves(actor, status: Status) -> list[Action]:
    """Legal from `status` and allowed to this role; the forward move first."""
    legal = [a for a in legal_actions(Status(status)) if a in MOVES and actor.can(ACTION_PERMISSIONS[a])]
    return sorted(legal, key=list(MOVES).index)


def close_confirmation() -> None:
    st.session_state.pop(CONFIRM, None)
    st.session_state.pop(payment_events.CONFIRM_DISPUTED, None)


@st.dialog("Confirm", width="medium", on_dismiss=close_confirmation)
def confirm_move(actor, detail: OrderDetail) -> None:
    actor = session.current_actor()  # a dialog's rerun skips the entry point's check
    pending = st.session_state.get(CONFIRM) or {}
    action = Action(pending["action"])
    sentence, button = consequence(detail, action)
    st.subheader(f"{action.label} {detail.number}?")
    st.text(sentence)
    reason = st.text_area(
        "Reason (optional, goes in the timeline)",
        key="order_move_reason",
        max_chars=lifecycle.MAX_REASON,
        height=80,
    )
    options = payment_events.move_options(actor, detail.number, action)  # a disputed Fulfil
    go, back = st.columns([3, 1])
    if go.button(
        display.escape_markdown(button),
        key="order_move_confirm",
        type="primary",
        width="stretch",
        disabled=options is None,
    ):
        db = resources.get_db()
        try:
            current = queries.order_detail(db, detail.number, actor=actor).status
            if current != pending["status"]:
                raise OrdersError(
                    f"Someone else changed {detail.number} meanwhile: it is now "
                    f"{statuses.status_label(current)}, so nothing was done. "
                    "Close this and review the order."
                )
            after = MOVES[action](
                db,
                actor,
                detail.number,
                reason=reason or "",
                gateways=resources.get_gateways(),
                **(options or {}),
            )
        except OrdersError as error:
            st.error(display.escape_markdown(error), icon=":material/error:")
            return
        done = f"{detail.number} is now {statuses.status_label(after.status)}."
        if after.refunded_amount > detail.refunded_amount:
            done += (
                " Refunded "
                + display.money(after.refunded_amount - detail.refunded_amount, after.currency)
                + " to the card."
            )
        st.session_state[FLASH] = {"number": detail.number, "text": done}
        st.session_state.pop("order_move_reason", None)
        close_confirmation()
        st.rerun()
    if back.button("Back", key="order_move_back", width="stretch"):
        close_confirmation()
        st.rerun()


def on_add_note(number: str) -> None:
    actor = session.current_actor()
    try:
        lifecycle.add_note(resources.get_db(), actor, number, st.session_state.get(NOTE) or "")
    except OrdersError as error:
        st.session_state[NOTE_ERROR] = str(error)
        return
    st.session_state[NOTE] = ""
    st.session_state.pop(NOTE_ERROR, None)
    st.session_state[FLASH] = {"number": number, "text": "Note added to the timeline."}


def find_order_form() -> None:
    with st.form("order_find", border=True, width=420):
        number = st.text_input(
            "Order number", key="order_find_number", placeholder="ORD-000123", max_chars=40
        )
        if st.form_submit_button("Open", type="primary", icon=":material/search:"):
            st.query_params.from_dict({"number": number.strip()} if number.strip() else {})
            st.rerun()


def labelled(label: str, value: str, *, code: bool = False) -> None:
    st.caption(label)
    if code and value:
        # One unbroken line with a copy button: ids are copied whole, never wrapped.
        st.code(value, language=None, wrap_lines=False)
    else:
        st.text(value or "—")


def payment_state(detail: OrderDetail, payment: PaymentAttempt) -> str:
    """The payment card's status word: Refunded once everything paid went back."""
    if payment.status == PaymentStatus.SUCCEEDED and detail.fully_refunded:
        return "Refunded"
    if payment.status == PaymentStatus.SUCCEEDED and detail.refunded_amount:
        return f"Partly refunded ({display.money(detail.refunded_amount, detail.currency)})"
    return payment.status.value.capitalize()


def decline_reason(code: str | None, message: str) -> str:
    """The gateway's reason in plain words ("Your card has insufficient funds.")."""
    return DECLINE_MESSAGES.get(code or "", "") or message


def on_take_payment(number: str) -> None:
    """Charge the chosen card token for a Created order (checkout.pay_order checks the
    permission, the status and an attempt already under way; it never charges twice)."""
    actor = session.current_actor()
    st.session_state.pop(PAY_FAILED, None)
    token = st.session_state.get(PAY_TOKEN) or ""
    if token == card_tokens.OTHER_TOKEN:
        token = (st.session_state.get(f"{PAY_TOKEN}_other") or "").strip()
    try:
        after = checkout.pay_order(
            resources.get_db(), actor, number, token=token, gateways=resources.get_gateways()
        )
    except (CardDeclined, InvalidToken) as error:
        reason = decline_reason(error.code, str(error))
        st.session_state[PAY_FAILED] = {"number": number, "reason": reason, "code": error.code}
        return
    except OrdersError as error:
        st.session_state[PAY_FAILED] = {"number": number, "reason": str(error), "code": None}
        return
    if after.status == Status.PAID:
        text = (
            f"{number} is now Paid: {display.money(after.total_amount, after.currency)} charged to the card."
        )
    else:
        text = f"{number} is {statuses.status_label(after.status)}; the payment is still being processed."
    st.session_state[FLASH] = {"number": number, "text": text}


def take_payment(detail: OrderDetail) -> None:
    """For a Created order, to a role that may take payments: pick a card, charge it."""
    with st.container(border=True, key="order_take_payment"):
        st.markdown("#### Take payment")
        failed = st.session_state.get(PAY_FAILED)
        if failed and failed.get("number") == detail.number:
            st.error(
                "The payment failed: " + display.escape_markdown(failed["reason"]),
                icon=":material/credit_card_off:",
            )
            if failed.get("code"):
                st.caption(f"Gateway reason code: {failed['code']}. The order stays Created.")
        if detail.payment_in_flight:
            st.info(
                "A payment for this order is being processed. Reload in a moment to see its result.",
                icon=":material/hourglass_top:",
            )
            return
        st.text(
            f"Charge {display.money(detail.total_amount, detail.currency)} to a card for {detail.number}."
        )
        card_tokens.pick_token(PAY_TOKEN)
        card_tokens.tokens_help()
        st.button(
            f"Charge {display.money(detail.total_amount, detail.currency)}",
            key="order_pay",
            type="primary",
            icon=":material/credit_card:",
            on_click=on_take_payment,
            args=(detail.number,),
        )


def show_timeline(events: tuple[OrderEvent, ...]) -> None:
    for event in reversed(events):  # newest first
        with st.container(border=True, gap="small"):
            row = st.container(
                horizontal=True, horizontal_alignment="distribute", vertical_alignment="center"
            )
            head = row.container(horizontal=True, vertical_alignment="center", gap="small", width="content")
            head.markdown(
                "**"
                + display.escape_markdown(
                    EVENT_TITLES.get(event.kind, event.kind.value.replace("_", " ").capitalize())
                )
                + "**"
            )
            if event.from_status and event.to_status:
                with head:
                    statuses.status_badge(event.from_status)
                    st.markdown(":material/arrow_forward:")
                    statuses.status_badge(event.to_status)
            elif event.to_status:
                with head:
                    statuses.status_badge(event.to_status)
            byline = f"{when(event.at)} · {event.actor}"
            if event.job_id:
                byline += f" · job #{event.job_id}"
            row.text(byline, width="content")  # an email: text, not Markdown (no autolink)
            if event.note:
                st.text(event.note)


def main() -> None:
    actor = session.current_actor()
    db = resources.get_db()
    st.page_link(
        links.ORDERS_PAGE,
        label="All orders",
        icon=":material/arrow_back:",
        # the list this order was opened from: its tab, filters, sort, page and ticks
        query_params=links.list_back(st.query_params.get("back"), orders_view.ORDER_PARAMS),
    )
    raw = st.query_params.get("number")
    if not raw or not raw.strip():
        st.title("Order")
        st.info("No order chosen: open one from the Orders page, or type its number.")
        find_order_form()
        return
    try:
        detail = queries.order_detail(db, raw, actor=actor)
    except NotFound:
        st.title("Order not found")
        st.error(
            f"There is no order {display.escape_markdown(raw.strip()[:40])}. "
            "Check the number, or find the order on the Orders page.",
            icon=":material/search_off:",
        )
        find_order_form()
        return
    number, currency = detail.number, detail.currency

    header = st.container(horizontal=True, vertical_alignment="center", gap="medium", key="order_header")
    with header:
        st.title(f"Order {number}", width="content")
        statuses.status_badge(detail.status)
        facts = payment_events.read(actor, number)
        payment_events.header_badges(facts)

    flash = st.session_state.get(FLASH)
    if flash and flash.get("number") == number:
        st.success(display.escape_markdown(flash["text"]), icon=":material/check_circle:")
        st.session_state.pop(FLASH, None)

    moves = available_moves(actor, detail.status)
    if moves:
        bar = st.container(horizontal=True)
        for action in moves:
            if bar.button(
                action.label,
                key=f"order_action_{action.value}",
                icon=ACTION_ICONS.get(action),
                type="primary" if action == Action.FULFILL else "secondary",
            ):
                st.session_state[CONFIRM] = {
                    "number": number,
                    "action": action.value,
                    "status": detail.status.value,
                }
                st.session_state.pop("order_move_reason", None)
    pending = st.session_state.get(CONFIRM)
    if pending and pending.get("number") == number:
        confirm_move(actor, detail)
    if detail.status == Status.CREATED and actor.can(ACTION_PERMISSIONS[Action.PAY]):
        take_payment(detail)

    payment_events.show(actor, facts)

    metrics = st.columns(4)
    metrics[0].metric("Total", display.money(detail.total_amount, currency))
    metrics[1].metric("Refunded", display.money(detail.refunded_amount, currency))
    metrics[2].metric("Items", f"{detail.quantity:,}")
    metrics[3].metric("Placed", when(detail.created_at)[:10], help=when(detail.created_at))

    # The payment card is the widest: a gateway id stays on one line, whole, from 1280 px up.
    left, middle, right = st.columns([1, 1, 1.4], border=True)
    with left:
        st.markdown("#### Customer")
        labelled("Name", detail.customer.name)
        labelled("Email", detail.customer.email)  # st.text: plain text, never a mailto link
    with middle:
        st.markdown("#### Shipping address")
        if detail.shipping_address is None:
            st.text("Nothing to ship (digital items only).")
        else:
            st.text("\n".join(detail.shipping_address.lines()))  # the country's convention
    with right:
        st.markdown("#### Payment")
        payment = detail.payment
        if payment is None:
            st.text("No payment yet.")
        else:
            with st.container(key="order_payment_state"):
                labelled(
                    "Amount",
                    f"{display.money(payment.amount, payment.currency)} · {payment_state(detail, payment)}",
                )
            labelled("Gateway", payment.gateway.capitalize())
            labelled("Gateway payment id", payment.gateway_payment_id or "", code=True)
            if payment.failure_message:
                labelled("Failure", payment.failure_message)

    st.subheader("Items")
    st.dataframe(
        pd.DataFrame(
            {
                "SKU": [i.sku for i in detail.items],
                "Product": [i.product for i in detail.items],
                "Item": [i.name for i in detail.items],
                "Quantity": [i.quantity for i in detail.items],
                "Unit price": [display.money(i.unit_amount, currency) for i in detail.items],
                "Amount": [display.money(i.amount, currency) for i in detail.items],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "Quantity": st.column_config.NumberColumn(format="%d", width="small"),
            "Unit price": st.column_config.TextColumn(alignment="right", width="small"),
            "Amount": st.column_config.TextColumn(alignment="right", width="small"),
        },
    )

    if detail.refunds:
        st.subheader("Refunds")
        refunds = detail.refunds
        st.dataframe(
            pd.DataFrame(
                {
                    "When": [when(r.created_at) for r in refunds],
                    "Amount": [display.money(r.amount, r.currency) for r in refunds],
                    "Status": [r.status.value.capitalize() for r in refunds],
                    "For": [r.action.label for r in refunds],
                    "By": [r.actor or "" for r in refunds],
                    "Gateway refund id": [r.gateway_refund_id or "" for r in refunds],
                    "Failure": [r.failure_message or "" for r in refunds],
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={"Amount": st.column_config.TextColumn(alignment="right")},
        )

    st.subheader("Timeline")
    if actor.can(Permission.NOTE):
        with st.form("order_note_form", border=True):
            st.text_area(
                "Add a staff note",
                key=NOTE,
                max_chars=4000,
                height=90,
                placeholder="Only staff see notes. They are shown exactly as typed.",
            )
            st.form_submit_button(
                "Add note", type="primary", on_click=on_add_note, args=(number,), icon=":material/note_add:"
            )
        if st.session_state.get(NOTE_ERROR):
            st.error(display.escape_markdown(st.session_state.pop(NOTE_ERROR)))
    show_timeline(detail.events)


if __name__ == "__main__":
    main()
