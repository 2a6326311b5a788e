"""A browser's cookies for AppTest: AppTest runs the real scripts in-process but has no
browser, so st.context.cookies is empty. `FakeBrowser` stands in for the websocket's
client context (cookies, headers, address), the one place Streamlit reads them from;
a staff member signs in through the real orders_core.authentication, so the script
resolves a real server-side session, exactly as behind app.py."""

from __future__ import annotations

import contextlib
import dataclasses

from orders_core import authentication
from orders_core.demo import DEMO_PASSWORD

CSRF = "csrf-value-of-this-test-browser"


@dataclasses.dataclass
class FakeBrowser:
    cookies: dict[str, str] = dataclasses.field(default_factory=lambda: {"od_csrf": CSRF})
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    remote_ip: str | None = "127.0.0.1"

    def sign_in(self, db, email: str, password: str = DEMO_PASSWORD) -> authentication.SignedIn:
        signed_in = authentication.sign_in_with_password(
            db, email, password, client_address=self.remote_ip or "", user_agent="AppTest"
        )
        self.cookies["od_session"] = signed_in.token
        return signed_in

    def sign_out(self) -> None:
        self.cookies.pop("od_session", None)


def use_fake_browser(monkeypatch, browser: FakeBrowser) -> FakeBrowser:
    """Every st.context read in this process sees `browser` (until the test ends)."""
    import streamlit.runtime.context as context

    monkeypatch.setattr(context, "_get_client_context", lambda: browser)
    return browser


@contextlib.contextmanager
def installed_fake_browser(browser: FakeBrowser):
    """use_fake_browser without pytest (the benchmarks)."""
    import streamlit.runtime.context as context

    original = context._get_client_context
    context._get_client_context = lambda: browser
    try:
        yield browser
    finally:
        context._get_client_context = original
