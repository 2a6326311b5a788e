"""Values as a page shows them: text safe inside Markdown, money, a browser's name."""

from __future__ import annotations

import re

from orders_core.money import format_money

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|:~$=&\"'^@%])")


def escape_markdown(text) -> str:
    """`text` as literal characters inside st.markdown / st.error / labels: every ASCII
    punctuation character that Markdown, Streamlit directives (:red[..], :icon:), math
    ($..$) or HTML could act on is backslash-escaped, and line breaks are kept."""
    value = _MD_SPECIAL.sub(r"\\\1", str(text))
    return value.replace("\r\n", "\n").replace("\n", "  \n")


_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def markdown_with_plain_emails(text) -> str:
    """escape_markdown, with every email address in a code span: Markdown turns an
    email into a mailto link even when it is escaped, but never inside code."""
    value, parts, at = str(text), [], 0
    for found in _EMAIL.finditer(value):
        parts.append(escape_markdown(value[at : found.start()]))
        parts.append(f"`{found.group()}`")
        at = found.end()
    parts.append(escape_markdown(value[at:]))
    return "".join(parts)


def money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def browser_label(user_agent: str) -> str:
    """'Chrome 156 on Linux' from a user agent, for the sessions tables."""
    agent = user_agent or ""
    browser = next(
        (
            name
            for key, name in (
                ("Edg/", "Edge"),
                ("OPR/", "Opera"),
                ("Firefox/", "Firefox"),
                ("HeadlessChrome/", "Headless Chrome"),
                ("Chrome/", "Chrome"),
                ("Safari/", "Safari"),
            )
            if key in agent
        ),
        "",
    )
    version = ""
    if browser:
        key = {
            "Edge": "Edg/",
            "Opera": "OPR/",
            "Firefox": "Firefox/",
            "Headless Chrome": "HeadlessChrome/",
            "Chrome": "Chrome/",
            "Safari": "Version/",
        }[browser]
        if key in agent:
            version = agent.split(key, 1)[1].split(".", 1)[0].split(" ", 1)[0]
    system = next(
        (
            name
            for key, name in (
                ("Windows", "Windows"),
                ("Mac OS X", "macOS"),
                ("Android", "Android"),
                ("iPhone", "iOS"),
                ("Linux", "Linux"),
            )
            if key in agent
        ),
        "",
    )
    label = " ".join(part for part in (browser, version) if part)
    if system:
        label = f"{label} on {system}" if label else system
    return label or (agent[:60] or "unknown")
