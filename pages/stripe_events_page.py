"""Stripe events: what Stripe's webhooks (and the simulated gateway's demos) delivered,
newest first, with what Orders Desk did with each: applied, no change, stale (older
than what was applied), unmatched (a payment we do not know: kept, never dropped),
ignored, failed, or still pending. Every staff member (analyst and up) may look."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from orders_core import payment_events
from pages.ui import links, resources, session

LIMIT = 500
OUTCOME_LABELS = {
    "applied": "Applied",
    "no_change": "No change",
    "stale": "Stale",
    "unmatched": "Unmatched",
    "ignored": "Ignored",
    "failed": "Failed",
    "deferred": "Waiting",
    "pending": "Pending",
}


def main() -> None:
    actor = session.current_actor()
    st.title("Stripe events")
    st.caption(
        "Events arrive signed at POST /webhooks/stripe, are stored once by their id and applied by the "
        "worker. Unmatched events are about payments Orders Desk does not know."
    )
    unmatched = st.toggle("Unmatched only", key="stripe_events_unmatched")
    events = payment_events.list_stripe_events(
        resources.get_db(), actor=actor, unmatched=unmatched, limit=LIMIT
    )
    if not events:
        st.info("No unmatched Stripe events." if unmatched else "No Stripe events yet.")
        return
    counts = pd.Series([e.outcome for e in events]).value_counts()
    st.text(" · ".join(f"{OUTCOME_LABELS.get(k, k)}: {v}" for k, v in counts.items()))
    st.dataframe(
        pd.DataFrame(
            {
                "Received (UTC)": [e.received_at for e in events],
                "Type": [e.type for e in events],
                "Outcome": [OUTCOME_LABELS.get(e.outcome or "", e.outcome) for e in events],
                "Order": [links.order_url(e.order_number) if e.order_number else None for e in events],
                "Object": [e.object_id for e in events],
                "What happened": [e.detail or e.error or "" for e in events],
                "Event id": [e.event_id for e in events],
                "Source": [e.source for e in events],
            }
        ),
        hide_index=True,
        width="stretch",
        key="stripe_events_table",
        column_config={
            "Order": st.column_config.LinkColumn("Order", display_text=r"number=(.*)$", width=110),
            "What happened": st.column_config.TextColumn(width="large"),
        },
    )


if __name__ == "__main__":
    main()
