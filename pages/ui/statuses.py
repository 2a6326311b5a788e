"""How an order status looks on every page: one label, one colour, one icon."""

from __future__ import annotations

import dataclasses

import streamlit as st

from orders_core.status import Status


@dataclasses.dataclass(frozen=True)
class StatusLook:
    color: str  # a Streamlit colour name: badges, the grid's status column
    chart_color: str  # the same colour for charts
    icon: str


STATUS_LOOKS = {
    Status.CREATED.value: StatusLook("gray", "#9aa0a6", ":material/edit_note:"),
    Status.PAID.value: StatusLook("blue", "#4e79a7", ":material/credit_card:"),
    Status.FULFILLED.value: StatusLook("green", "#59a14f", ":material/local_shipping:"),
    Status.CANCELED.value: StatusLook("red", "#e15759", ":material/block:"),
    Status.RETURNED.value: StatusLook("orange", "#f28e2b", ":material/undo:"),
}
assert set(STATUS_LOOKS) == {s.value for s in Status}
STATUS_COLORS = {status: look.color for status, look in STATUS_LOOKS.items()}


def status_label(status: str | Status | None) -> str:
    value = status.value if isinstance(status, Status) else (status or "")
    return value.capitalize() if value else "—"


def status_badge(status: str | Status) -> None:
    value = status.value if isinstance(status, Status) else str(status)
    look = STATUS_LOOKS.get(value)
    st.badge(status_label(value), icon=look.icon if look else None, color=look.color if look else "gray")
