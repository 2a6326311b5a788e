"""Saved views of the orders list, and each staff member's column choices.

A view is the list's URL query parameters (tab, filters, sort: whatever fields the list
has, so a new filter carries through without a change here) and optionally its columns,
kept under a name. A staff member's own views are theirs; a team view (published by an
admin) is listed for everyone. One view may be a person's default: the list opens on it
when its URL asks for nothing. Every function reads the actor's account again."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping

from sqlalchemy import delete, insert, or_, select, update

from orders_core.clock import utcnow
from orders_core.db import Database
from orders_core.errors import NotFound, PermissionDenied, ValidationError
from orders_core.schema import saved_views, staff_list_prefs
from orders_core.staff import Actor, Permission, authorize

# The orders list's columns that a person may show, hide and order (the order number and
# the tick box are always there). Ids, not labels: the page owns the labels.
ORDER_LIST_COLUMNS = ("status", "flags", "customer", "email", "items", "total", "refunded", "created")
DEFAULT_COLUMNS = ORDER_LIST_COLUMNS

MAX_NAME = 60
MAX_PARAMS = 30
MAX_PARAM_VALUE = 500
_PARAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclasses.dataclass(frozen=True)
class SavedView:
    id: int
    name: str
    owner_staff_id: int
    team: bool
    params: dict[str, str]
    columns: tuple[str, ...] | None
    updated_at: dt.datetime

    def owned_by(self, actor: Actor) -> bool:
        return actor.staff_id == self.owner_staff_id


# -- validation (pure) -----------------------------------------------------------------------
def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def clean_name(name: object) -> str:
    """A view's name as stored: trimmed, 1 to 60 characters, no control characters."""
    if not isinstance(name, str):
        raise ValidationError("A view's name must be text.")
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValidationError("Give the view a name.")
    if len(cleaned) > MAX_NAME:
        raise ValidationError(f"A view's name has at most {MAX_NAME} characters, not {len(cleaned)}.")
    if _has_control_characters(cleaned):
        raise ValidationError("A view's name cannot contain control characters.")
    return cleaned


def clean_params(params: Mapping[str, object]) -> dict[str, str]:
    """The list's query parameters to keep: short lowercase names, short text values."""
    if not isinstance(params, Mapping):
        raise ValidationError("A view's parameters must be names and values.")
    cleaned: dict[str, str] = {}
    for name, value in params.items():
        if value is None or value == "":
            continue
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
            raise ValidationError(f"{str(name)[:40]!r} is not a parameter of the orders list.")
        if not isinstance(value, str):
            raise ValidationError(f"The value of {name} must be text.")
        if len(value) > MAX_PARAM_VALUE:
            raise ValidationError(f"The value of {name} has more than {MAX_PARAM_VALUE} characters.")
        if _has_control_characters(value):
            raise ValidationError(f"The value of {name} cannot contain control characters.")
        cleaned[name] = value
    if len(cleaned) > MAX_PARAMS:
        raise ValidationError(f"A view keeps at most {MAX_PARAMS} parameters.")
    return dict(sorted(cleaned.items()))


def clean_columns(columns: Iterable[object]) -> tuple[str, ...]:
    """Shown columns in their order: known ids, each once, at least one."""
    if isinstance(columns, (str, bytes)) or not isinstance(columns, Iterable):
        raise ValidationError("Columns must be a list of column names.")
    chosen: list[str] = []
    for column in columns:
        if column not in ORDER_LIST_COLUMNS:
            raise ValidationError(
                f"{str(column)[:40]!r} is not a column of the orders list; "
                f"use {', '.join(ORDER_LIST_COLUMNS)}."
            )
        if column in chosen:
            raise ValidationError(f"The column {column} is chosen twice.")
        chosen.append(str(column))
    if not chosen:
        raise ValidationError("Show at least one column.")
    return tuple(chosen)


def _stored_columns(text: str | None) -> tuple[str, ...] | None:
    """Columns read back: ids no longer known are dropped (a column may be retired)."""
    if not text:
        return None
    try:
        kept = tuple(c for c in json.loads(text) if c in ORDER_LIST_COLUMNS)
    except (ValueError, TypeError):
        return None
    return kept or None


def _view(row) -> SavedView:
    try:
        params = {str(k): str(v) for k, v in json.loads(row.params).items()}
    except (ValueError, TypeError, AttributeError):
        params = {}
    return SavedView(
        id=row.id,
        name=row.name,
        owner_staff_id=row.owner_staff_id,
        team=bool(row.team),
        params=params,
        columns=_stored_columns(row.columns),
        updated_at=row.updated_at,
    )


def _staff_id(actor: Actor) -> int:
    if actor.staff_id is None:
        raise PermissionDenied("Saved views belong to staff members; sign in as one.")
    return actor.staff_id


# -- saved views ---------------------------------------------------------------------------------
def save_view(
    db: Database,
    actor: Actor,
    *,
    name: object,
    params: Mapping[str, object],
    columns: Iterable[object] | None = None,
    team: bool = False,
    replace: bool = False,
) -> SavedView:
    """Keep the list's current view under a name. A team view needs an admin. The same
    name again is refused unless `replace`, which updates that view."""
    actor = authorize(db, actor, Permission.PUBLISH_VIEWS if team else Permission.VIEW)
    owner = _staff_id(actor)
    clean = clean_name(name)
    stored_params = json.dumps(clean_params(params))
    stored_columns = json.dumps(list(clean_columns(columns))) if columns is not None else None
    now = utcnow()
    with db.write() as conn:
        same_name = conn.execute(
            select(saved_views).where(
                saved_views.c.name_key == clean.lower(),
                or_(saved_views.c.owner_staff_id == owner, saved_views.c.team.is_(True))
                if team
                else saved_views.c.owner_staff_id == owner,
            )
        ).first()
        if same_name is not None and (not replace or bool(same_name.team) != team):
            kind = "team view" if same_name.team else "view of yours"
            raise ValidationError(
                f"There is already a {kind} named {same_name.name!r}; choose another name"
                + (" or replace it." if bool(same_name.team) == team else ".")
            )
        if same_name is not None:
            conn.execute(
                update(saved_views)
                .where(saved_views.c.id == same_name.id)
                .values(name=clean, params=stored_params, columns=stored_columns, updated_at=now)
            )
            view_id = same_name.id
        else:
            view_id = conn.execute(
                insert(saved_views).values(
                    owner_staff_id=owner,
                    name=clean,
                    name_key=clean.lower(),
                    params=stored_params,
                    columns=stored_columns,
                    team=team,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        row = conn.execute(select(saved_views).where(saved_views.c.id == view_id)).one()
    return _view(row)


def list_views(db: Database, actor: Actor) -> list[SavedView]:
    """The views this person may open: team views first, then their own, by name."""
    actor = authorize(db, actor, Permission.VIEW)
    owner = _staff_id(actor)
    with db.read() as conn:
        rows = conn.execute(
            select(saved_views)
            .where(or_(saved_views.c.team.is_(True), saved_views.c.owner_staff_id == owner))
            .order_by(saved_views.c.team.desc(), saved_views.c.name_key, saved_views.c.id)
        ).all()
    return [_view(r) for r in rows]


def get_view(db: Database, actor: Actor, view_id: object) -> SavedView:
    """One view by id (a shared link `?view=<id>`): a team view, or one of the viewer's
    own. Someone else's personal view is not found, whoever asks."""
    actor = authorize(db, actor, Permission.VIEW)
    owner = _staff_id(actor)
    number = _view_id(view_id)
    with db.read() as conn:
        row = conn.execute(select(saved_views).where(saved_views.c.id == number)).one_or_none()
    if row is None or not (row.team or row.owner_staff_id == owner):
        raise NotFound(f"There is no saved view #{number} that you can open.")
    return _view(row)


def _view_id(value: object) -> int:
    text = str(value).strip() if value is not None else ""
    if not re.fullmatch(r"\d{1,12}", text):
        raise ValidationError(f"{text[:40]!r} is not a saved view's number.")
    return int(text)


def delete_view(db: Database, actor: Actor, view_id: object) -> None:
    """Remove one of your own views; a team view needs an admin. Anyone whose default it
    was opens the plain list again."""
    view = get_view(db, actor, view_id)
    if view.team:
        actor = authorize(db, actor, Permission.PUBLISH_VIEWS)
    elif not view.owned_by(actor):  # pragma: no cover - get_view already refuses it
        raise NotFound(f"There is no saved view #{view.id} that you can open.")
    with db.write() as conn:
        conn.execute(
            update(staff_list_prefs)
            .where(staff_list_prefs.c.default_view_id == view.id)
            .values(default_view_id=None)
        )
        conn.execute(delete(saved_views).where(saved_views.c.id == view.id))


def set_default_view(db: Database, actor: Actor, view_id: object | None) -> None:
    """The view the list opens on when its URL asks for nothing (None: the plain list)."""
    actor = authorize(db, actor, Permission.VIEW)
    chosen = get_view(db, actor, view_id).id if view_id is not None else None
    _write_prefs(db, _staff_id(actor), default_view_id=chosen)


def default_view(db: Database, actor: Actor) -> SavedView | None:
    actor = authorize(db, actor, Permission.VIEW)
    owner = _staff_id(actor)
    with db.read() as conn:
        row = conn.execute(
            select(saved_views)
            .join(staff_list_prefs, staff_list_prefs.c.default_view_id == saved_views.c.id)
            .where(
                staff_list_prefs.c.staff_id == owner,
                or_(saved_views.c.team.is_(True), saved_views.c.owner_staff_id == owner),
            )
        ).one_or_none()
    return _view(row) if row is not None else None


# -- columns ---------------------------------------------------------------------------------------
def column_choice(db: Database, actor: Actor) -> tuple[str, ...]:
    """This person's shown columns, in order (all of them until they choose)."""
    actor = authorize(db, actor, Permission.VIEW)
    with db.read() as conn:
        text = conn.execute(
            select(staff_list_prefs.c.columns).where(staff_list_prefs.c.staff_id == _staff_id(actor))
        ).scalar_one_or_none()
    return _stored_columns(text) or DEFAULT_COLUMNS


def save_column_choice(db: Database, actor: Actor, columns: Iterable[object]) -> tuple[str, ...]:
    actor = authorize(db, actor, Permission.VIEW)
    chosen = clean_columns(columns)
    _write_prefs(db, _staff_id(actor), columns=json.dumps(list(chosen)))
    return chosen


def reset_column_choice(db: Database, actor: Actor) -> tuple[str, ...]:
    actor = authorize(db, actor, Permission.VIEW)
    _write_prefs(db, _staff_id(actor), columns=None)
    return DEFAULT_COLUMNS


def _write_prefs(db: Database, staff_id: int, **values) -> None:
    values["updated_at"] = utcnow()
    with db.write() as conn:
        changed = conn.execute(
            update(staff_list_prefs).where(staff_list_prefs.c.staff_id == staff_id).values(**values)
        ).rowcount
        if not changed:
            conn.execute(insert(staff_list_prefs).values(staff_id=staff_id, **values))
