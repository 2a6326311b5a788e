"""Text people typed or the system wrote, inside Markdown, that must stay text: nothing
in it is formatting, and an email address in it is never turned into a mailto link
(Markdown auto-links addresses even when every character is escaped)."""

from __future__ import annotations

from pages.ui.display import escape_markdown

WORD_JOINER = "\u2060"  # invisible; stops the auto-link of an email address after its "@"


def markdown_literal(text) -> str:
    """`text` for st.markdown, st.caption, st.error or an st.table cell, shown as it is."""
    return escape_markdown(text).replace("\\@", "\\@" + WORD_JOINER)
