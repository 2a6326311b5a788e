"""The card-token picker and the table of what each Stripe test token does: the
checkout's, and staff taking payment for a Created order on its page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from orders_core.payments.card_tokens import DECLINE_MESSAGES, TEST_TOKENS

OTHER_TOKEN = "__other__"


def token_label(token: str) -> str:
    if token == OTHER_TOKEN:
        return "Another token… (type it below)"
    info = TEST_TOKENS[token]
    if info.decline_code:
        return f"{token} — declined: {DECLINE_MESSAGES.get(info.decline_code, info.decline_code)}"
    if info.refunds_fail:
        return f"{token} — charge succeeds, any refund of it fails"
    return f"{token} — {info.brand.capitalize()}, charge succeeds"


def pick_token(key: str) -> str:
    """A select of the test tokens (and "another token", typed); `key` names the widgets."""
    options = list(TEST_TOKENS) + [OTHER_TOKEN]
    choice = st.selectbox(
        "Card token",
        options,
        format_func=token_label,
        key=key,
        help="Stripe test tokens stand in for a card; never enter a real card number or an API key.",
    )
    if choice == OTHER_TOKEN:
        return st.text_input("Token", placeholder="tok_… or pm_card_…", key=f"{key}_other").strip()
    return choice


def tokens_table() -> pd.DataFrame:
    rows = []
    for token, info in TEST_TOKENS.items():
        if info.decline_code:
            outcome = "Declined"
            effect = f"{DECLINE_MESSAGES.get(info.decline_code, '')} ({info.decline_code})"
        elif info.refunds_fail:
            outcome, effect = "Charged", "The charge succeeds; any refund of it fails"
        else:
            outcome, effect = "Charged", f"{info.brand.capitalize()} card; the charge succeeds"
        rows.append({"Token": token, "Outcome": outcome, "What it does": effect})
    return pd.DataFrame(rows)


def tokens_help() -> None:
    with st.expander("What each test token does"):
        st.dataframe(tokens_table(), hide_index=True, width="stretch")
