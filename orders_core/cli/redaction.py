"""Secrets never reach the terminal: what the CLI prints on stderr goes through here."""

from __future__ import annotations

import argparse
import os
import re

_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s:/@]*:)[^\s@/]+@")
_API_KEY = re.compile(r"\b((?:sk|rk|whsec)_(?:test_|live_)?)[A-Za-z0-9_]+")


def redact(text: str, args: argparse.Namespace | None) -> str:
    """`text` without the --password given, the Stripe key, the database password, or
    anything shaped like a URL password or an API key."""
    secrets = [getattr(args, "password", None), os.environ.get("STRIPE_API_KEY")]
    url = os.environ.get("ORDERS_DATABASE_URL")
    if url:
        try:
            from sqlalchemy.engine import make_url

            secrets.append(make_url(url).password)
        except Exception:  # noqa: BLE001 - an unparseable URL is redacted by pattern below
            pass
    for secret in secrets:
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), "***")
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _API_KEY.sub(r"\1***", text)


__all__ = ["redact"]
