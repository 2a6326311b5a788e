"""The sign-in page: plain HTML from the server, so a password only ever travels in a
POST body to /sign-in and the session cookie is set by that response."""

from __future__ import annotations

import dataclasses
from html import escape

from .paths import SIGN_IN, SSO_START

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclasses.dataclass(frozen=True)
class SignInView:
    csrf: str
    next_path: str
    email: str = ""
    error: str = ""
    notice: str = ""
    password_sign_in: bool = True
    providers: tuple[tuple[str, str], ...] = ()  # (name in secrets.toml, label)


_STYLE = """
body{margin:0;font-family:"Source Sans 3","Source Sans Pro",system-ui,-apple-system,"Segoe UI",
sans-serif;background:#f7f8fa;color:#31333f}
main{max-width:420px;margin:9vh auto;padding:32px 36px;background:#fff;border-radius:12px;
box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.05)}
h1{font-size:1.8rem;margin:0 0 4px}p.caption{margin:0 0 24px;color:#6b6f7b}
label{display:block;font-size:.9rem;margin:14px 0 6px}
input[type=email],input[type=password]{box-sizing:border-box;width:100%;padding:10px 12px;
font-size:1rem;border:1px solid #d5d7de;border-radius:8px;background:#f0f2f6}
input:focus{outline:2px solid #ff4b4b33;border-color:#ff4b4b}
button,a.button{display:block;box-sizing:border-box;width:100%;margin-top:22px;padding:10px 12px;
font-size:1rem;border-radius:8px;border:1px solid #ff4b4b;background:#ff4b4b;color:#fff;
cursor:pointer;text-align:center;text-decoration:none}
a.button.sso{background:#fff;color:#31333f;border-color:#d5d7de;margin-top:12px}
.error{background:#ffecec;color:#7d1a1a;border-radius:8px;padding:10px 12px;margin:0 0 8px}
.notice{background:#e8f2ff;color:#0b3d91;border-radius:8px;padding:10px 12px;margin:0 0 8px}
.or{margin:22px 0 0;text-align:center;color:#6b6f7b;font-size:.9rem}
footer{margin-top:22px;font-size:.85rem;color:#6b6f7b}footer a{color:#6b6f7b}
"""


def render(view: SignInView) -> str:
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Sign in · Orders Desk</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        "<h1>Orders Desk</h1><p class=caption>Staff sign-in</p>",
    ]
    if view.notice:
        parts.append(f"<p class=notice role=status id=notice>{escape(view.notice)}</p>")
    if view.error:
        parts.append(f"<p class=error role=alert id=error>{escape(view.error)}</p>")
    if view.password_sign_in:
        parts.append(
            f'<form method=post action="{SIGN_IN}" autocomplete=on>'
            f'<input type=hidden name=csrf value="{escape(view.csrf)}">'
            f'<input type=hidden name=next value="{escape(view.next_path)}">'
            "<label for=email>Email</label>"
            f"<input type=email id=email name=email required maxlength=320 autocomplete=username "
            f'value="{escape(view.email)}"{"" if view.email else " autofocus"}>'
            "<label for=password>Password</label>"
            "<input type=password id=password name=password required maxlength=1024 "
            f"autocomplete=current-password{' autofocus' if view.email else ''}>"
            "<button type=submit id=sign-in>Sign in</button></form>"
        )
    for index, (name, label) in enumerate(view.providers):
        if index == 0 and view.password_sign_in:
            parts.append("<p class=or>or</p>")
        parts.append(
            f'<a class="button sso" id="sso-{escape(name)}" '
            f'href="{SSO_START}?provider={escape(name)}&amp;next={escape(_q(view.next_path))}">'
            f"Sign in with {escape(label)}</a>"
        )
    if not view.password_sign_in and not view.providers:
        parts.append(
            "<p class=error>No way to sign in is configured: set ORDERS_PASSWORD_SIGN_IN=1 "
            "or configure [auth] in .streamlit/secrets.toml.</p>"
        )
    parts.append('<footer>Testing the shop? <a href="/checkout">Demo checkout</a></footer>')
    parts.append("</main></body></html>")
    return "".join(parts)


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
