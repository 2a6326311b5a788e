"""What the payment gateway reported about an order without us, on the order page and
the orders list: the Disputed and Needs attention badges, the dispute's details, the
refunds made outside Orders Desk, and the confirmation Fulfil asks for on a disputed
order. Read through orders_core.payment_events; the rules (what makes an order
disputed, who may clear the flag, refusing to fulfil unconfirmed) live there."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from orders_core import payment_events
from orders_core.errors import OrdersError
from orders_core.staff import Permission
from orders_core.status import Action
from pages.ui import display, resources, session

CONFIRM_DISPUTED = "order_confirm_disputed"
FLAG_DISPUTED, FLAG_ATTENTION = "disputed", "attention"
FLAG_LABELS = {FLAG_DISPUTED: "Disputed", FLAG_ATTENTION: "Needs attention"}
FLAG_COLORS = {FLAG_DISPUTED: "red", FLAG_ATTENTION: "orange"}


def _when(value) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "—"


def read(actor, number: str) -> payment_events.PaymentEvents:
    return payment_events.read_payment_events(resources.get_db(), number, actor=actor)


def header_badges(facts: payment_events.PaymentEvents) -> None:
    """Beside the status badge: Disputed, Needs attention."""
    if facts.disputed:
        st.badge("Disputed", icon=":material/gavel:", color="red")
    if facts.needs_attention:
        st.badge("Needs attention", icon=":material/flag:", color="orange")


def _on_clear_attention(number: str) -> None:
    actor = session.current_actor()
    try:
        payment_events.clear_attention(resources.get_db(), actor, number)
    except OrdersError as error:
        st.session_state["order_attention_error"] = str(error)


def show(actor, facts: payment_events.PaymentEvents) -> None:
    """The attention notice, the disputes and the external refunds (nothing when none)."""
    if facts.needs_attention:
        with st.container(border=True, key="order_attention"):
            st.warning(
                "This order needs attention: money moved at the payment gateway without Orders Desk.",
                icon=":material/flag:",
            )
            st.text(facts.attention_reason or "")
            if actor.can(Permission.NOTE):
                st.button(
                    "Mark as reviewed",
                    key="order_attention_clear",
                    icon=":material/done:",
                    on_click=_on_clear_attention,
                    args=(facts.number,),
                )
            if st.session_state.get("order_attention_error"):
                st.error(display.escape_markdown(st.session_state.pop("order_attention_error")))
    if facts.disputes:
        st.subheader("Disputes")
        for dispute in facts.disputes:
            with st.container(border=True, key=f"order_dispute_{dispute.gateway_dispute_id}"):
                head = st.container(horizontal=True, vertical_alignment="center")
                head.markdown(f"**{display.escape_markdown(dispute.reason.replace('_', ' ').capitalize())}**")
                with head:
                    st.badge(
                        display.escape_markdown(dispute.status_label),
                        color="red" if dispute.marks_disputed else "green",
                        icon=":material/gavel:",
                    )
                cols = st.columns(4)
                cols[0].metric("Disputed amount", display.money(dispute.amount, dispute.currency))
                for column, label, value in (
                    (cols[1], "Evidence due by", dispute.evidence_due_by),
                    (cols[2], "Opened", dispute.opened_at),
                    (cols[3], "Closed", dispute.closed_at),
                ):
                    column.metric(label, f"{value:%Y-%m-%d}" if value else "—", help=_when(value))
                st.caption(f"Gateway dispute id: {dispute.gateway_dispute_id}")
    if facts.external_refunds:
        st.subheader("Refunds made outside Orders Desk")
        st.dataframe(
            pd.DataFrame(
                {
                    "When": [r.created_at or "" for r in facts.external_refunds],
                    "Amount": [display.money(r.amount, r.currency) for r in facts.external_refunds],
                    "Status": [r.status.capitalize() for r in facts.external_refunds],
                    "Gateway refund id": [r.gateway_refund_id or "" for r in facts.external_refunds],
                }
            ),
            hide_index=True,
            width="stretch",
            key="order_external_refunds",
        )


def move_options(actor, number: str, action: Action) -> dict | None:
    """Inside Fulfil's confirmation of a disputed order: the warning and the explicit
    yes. Returns the keyword arguments for the move, or None while not confirmed."""
    if action != Action.FULFILL:
        return {}
    facts = read(actor, number)
    if not facts.disputed:
        return {}
    [*_, dispute] = [d for d in facts.disputes if d.marks_disputed]
    st.error(
        f"{number} is disputed: {display.escape_markdown(dispute.describe())}. Shipping it now may mean "
        "losing the goods as well as the money.",
        icon=":material/gavel:",
    )
    confirmed = st.checkbox("I know this order is disputed; fulfil it anyway", key=CONFIRM_DISPUTED)
    return {"confirm_disputed": True} if confirmed else None


def list_flags(actor, rows: list[dict]) -> dict[str, list[str]]:
    """Order number -> its flags (disputed, attention) for the orders list's badges."""
    disputed = payment_events.disputed_numbers(resources.get_db(), [r["id"] for r in rows], actor=actor)
    return {
        r["number"]: [
            f
            for f, on in ((FLAG_DISPUTED, r["id"] in disputed), (FLAG_ATTENTION, r.get("needs_attention")))
            if on
        ]
        for r in rows
    }


def flags_column():
    return st.column_config.MultiselectColumn(
        "Flags",
        width=120,
        options=list(FLAG_LABELS),
        color=[FLAG_COLORS[f] for f in FLAG_LABELS],
        format_func=FLAG_LABELS.get,
    )
