"""Saved views and column choices of the orders list (orders_core.saved_views), on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from orders_core import saved_views
from orders_core.errors import AccessWithdrawn, NotFound, PermissionDenied, ValidationError
from orders_core.staff import SYSTEM, find_staff, set_staff_active
from tests.support.staff_accounts import insert_demo_staff


@pytest.fixture
def people(db):
    insert_demo_staff(db)
    return {
        role: find_staff(db, f"{role}@ordersdesk.test").as_actor() for role in ("analyst", "ops", "admin")
    }


PAID_BIG = {"status": "paid", "min": "100.00", "sort": "-total_amount"}


def test_a_saved_view_keeps_its_parameters_and_columns_for_its_owner(db, people):
    view = saved_views.save_view(
        db, people["ops"], name="  Big   paid ", params=PAID_BIG, columns=["total", "customer"]
    )
    assert view.name == "Big paid"
    assert view.params == PAID_BIG
    assert view.columns == ("total", "customer")
    assert saved_views.list_views(db, people["ops"]) == [view]
    assert saved_views.get_view(db, people["ops"], str(view.id)) == view


def test_unknown_filter_fields_carry_through_as_parameters(db, people):
    view = saved_views.save_view(db, people["ops"], name="Disputed", params={"disputed": "1", "q": "x"})
    assert saved_views.get_view(db, people["ops"], view.id).params == {"disputed": "1", "q": "x"}


def test_a_personal_view_is_neither_listed_nor_opened_for_someone_else(db, people):
    view = saved_views.save_view(db, people["ops"], name="Mine", params=PAID_BIG)
    assert saved_views.list_views(db, people["analyst"]) == []
    with pytest.raises(NotFound, match=f"no saved view #{view.id}"):
        saved_views.get_view(db, people["analyst"], view.id)
    with pytest.raises(NotFound):
        saved_views.delete_view(db, people["analyst"], view.id)
    with pytest.raises(NotFound):
        saved_views.set_default_view(db, people["analyst"], view.id)


def test_only_an_admin_publishes_a_team_view_that_everyone_sees(db, people):
    with pytest.raises(PermissionDenied, match="publish team views"):
        saved_views.save_view(db, people["ops"], name="Team", params=PAID_BIG, team=True)
    team = saved_views.save_view(db, people["admin"], name="Ageing", params={"status": "paid"}, team=True)
    mine = saved_views.save_view(db, people["analyst"], name="Zed", params={})
    assert saved_views.list_views(db, people["analyst"]) == [team, mine]  # team views first
    assert saved_views.get_view(db, people["ops"], team.id) == team
    with pytest.raises(PermissionDenied):
        saved_views.delete_view(db, people["ops"], team.id)
    saved_views.delete_view(db, people["admin"], team.id)
    assert saved_views.list_views(db, people["ops"]) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the view a name"),
        ("   ", "Give the view a name"),
        ("x" * 61, "at most 60 characters"),
        ("bad\u0000name", "control characters"),
        ("right\u202eto-left", "control characters"),
        (42, "must be text"),
    ],
)
def test_a_bad_name_is_refused(db, people, name, message):
    with pytest.raises(ValidationError, match=message):
        saved_views.save_view(db, people["ops"], name=name, params={})
    assert saved_views.list_views(db, people["ops"]) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"Status": "paid"}, "not a parameter"),
        ({"a b": "1"}, "not a parameter"),
        ({"q": "x" * 501}, "more than 500"),
        ({"q": "line\nbreak"}, "control characters"),
        ({"q": 5}, "must be text"),
        ({f"p{i}": "1" for i in range(31)}, "at most 30"),
    ],
)
def test_hostile_parameters_are_refused(db, people, params, message):
    with pytest.raises(ValidationError, match=message):
        saved_views.save_view(db, people["ops"], name="x", params=params)


def test_a_hostile_name_is_kept_as_literal_text(db, people):
    hostile = "<img src=x onerror=alert(1)> ' OR 1=1 --"
    view = saved_views.save_view(db, people["ops"], name=hostile, params={})
    assert saved_views.get_view(db, people["ops"], view.id).name == hostile


def test_the_same_name_twice_is_refused_case_blind_unless_replaced(db, people):
    first = saved_views.save_view(db, people["ops"], name="Paid", params={"status": "paid"})
    with pytest.raises(ValidationError, match="already a view of yours named 'Paid'"):
        saved_views.save_view(db, people["ops"], name="PAID", params={})
    replaced = saved_views.save_view(
        db, people["ops"], name="paid", params={"status": "fulfilled"}, replace=True
    )
    assert (replaced.id, replaced.name, replaced.params) == (first.id, "paid", {"status": "fulfilled"})
    # another person may use the same name for their own view
    saved_views.save_view(db, people["analyst"], name="Paid", params={})


def test_a_team_view_name_is_unique_across_admins_and_personal_names(db, people):
    saved_views.save_view(db, people["admin"], name="Ageing", params={}, team=True)
    with pytest.raises(ValidationError, match="already a team view named 'Ageing'"):
        saved_views.save_view(db, people["admin"], name="ageing", params={}, team=True)
    with pytest.raises(ValidationError, match="already a team view"):
        saved_views.save_view(db, people["admin"], name="Ageing", params={}, replace=True)


def test_the_default_view_is_per_person_and_cleared_when_deleted(db, people):
    assert saved_views.default_view(db, people["ops"]) is None
    view = saved_views.save_view(db, people["ops"], name="Paid", params={"status": "paid"})
    saved_views.set_default_view(db, people["ops"], view.id)
    assert saved_views.default_view(db, people["ops"]) == view
    assert saved_views.default_view(db, people["analyst"]) is None
    saved_views.delete_view(db, people["ops"], view.id)
    assert saved_views.default_view(db, people["ops"]) is None
    team = saved_views.save_view(db, people["admin"], name="Team", params={}, team=True)
    saved_views.set_default_view(db, people["ops"], team.id)
    assert saved_views.default_view(db, people["ops"]) == team
    saved_views.set_default_view(db, people["ops"], None)
    assert saved_views.default_view(db, people["ops"]) is None


@pytest.mark.parametrize("view_id", ["abc", "-1", "1; drop table saved_views", None, ""])
def test_a_malformed_view_number_is_refused(db, people, view_id):
    with pytest.raises(ValidationError, match="not a saved view's number"):
        saved_views.get_view(db, people["ops"], view_id)


def test_column_choices_are_kept_per_person(db, people):
    assert saved_views.column_choice(db, people["ops"]) == saved_views.DEFAULT_COLUMNS
    saved_views.save_column_choice(db, people["ops"], ["total", "status", "created"])
    assert saved_views.column_choice(db, people["ops"]) == ("total", "status", "created")
    assert saved_views.column_choice(db, people["analyst"]) == saved_views.DEFAULT_COLUMNS
    saved_views.save_column_choice(db, people["ops"], ["email"])
    assert saved_views.column_choice(db, people["ops"]) == ("email",)
    assert saved_views.reset_column_choice(db, people["ops"]) == saved_views.DEFAULT_COLUMNS
    assert saved_views.column_choice(db, people["ops"]) == saved_views.DEFAULT_COLUMNS


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([], "at least one"),
        (["total", "total"], "twice"),
        (["password_hash"], "not a column"),
        ("total", "list"),
    ],
)
def test_bad_column_choices_are_refused(db, people, columns, message):
    with pytest.raises(ValidationError, match=message):
        saved_views.save_column_choice(db, people["ops"], columns)


def test_a_deactivated_person_can_neither_read_nor_save(db, people):
    saved_views.save_view(db, people["ops"], name="Paid", params={})
    set_staff_active(db, people["admin"], "ops@ordersdesk.test", False)
    with pytest.raises(AccessWithdrawn):
        saved_views.list_views(db, people["ops"])
    with pytest.raises(AccessWithdrawn):
        saved_views.save_column_choice(db, people["ops"], ["total"])


def test_the_system_actor_has_no_saved_views(db, people):
    with pytest.raises(PermissionDenied, match="staff members"):
        saved_views.save_view(db, SYSTEM, name="x", params={})
