"""One source of 'now': naive UTC datetimes, the way every timestamp is stored."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
