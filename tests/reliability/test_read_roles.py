"""Promise 4, for reading: the read services check who asks, in the core.

The order list and its tab counts, an order's detail, the CSV export, the analytics
report and its CSV downloads, and the jobs (list, one job, its failures) are each
called directly, as a page or the CLI would call them. Every staff role may view
(and export: analysts may, by the product's role definitions); a customer, a staff
member deactivated since their Actor was made, and no actor at all are refused with
PermissionDenied, whatever the page shows or hides.
"""

from __future__ import annotations

import pandas as pd
import pytest

from orders_core import analytics, jobs, queries
from orders_core.errors import PermissionDenied
from orders_core.export import export_orders
from orders_core.queries import OrderFilters
from orders_core.staff import SYSTEM, Actor, Role
from tests.reliability.shop import Shop
from tests.reliability.test_roles import actor_named, job_with_a_failure, paid_order

STAFF_ROLES = [role.value for role in Role]
REFUSED = ["customer", "deactivated admin", "nobody"]


def reader_named(shop: Shop, name: str) -> Actor | None:
    return None if name == "nobody" else actor_named(shop, name)


# service -> (prepare a target as the system operator, the call as `actor`)
READ_SERVICES = {
    "list orders": (paid_order, lambda s, a, t, tmp: queries.list_orders(s.db, OrderFilters(), actor=a)),
    "count orders per status": (
        paid_order,
        lambda s, a, t, tmp: queries.count_by_status(s.db, OrderFilters(), actor=a),
    ),
    "show an order": (paid_order, lambda s, a, t, tmp: queries.order_detail(s.db, t, actor=a)),
    "export orders": (
        paid_order,
        lambda s, a, t, tmp: export_orders(
            s.db, tmp / "exports" / "orders.csv", actor=a, filters=OrderFilters()
        ),
    ),
    "analytics report": (
        paid_order,
        lambda s, a, t, tmp: analytics.build_report(s.db, OrderFilters(), actor=a),
    ),
    "analytics CSV": (
        paid_order,
        lambda s, a, t, tmp: analytics.report_csv(s.db, pd.DataFrame({"number": [t]}), actor=a),
    ),
    "list jobs": (job_with_a_failure, lambda s, a, t, tmp: jobs.list_jobs(s.db, actor=a)),
    "show a job": (job_with_a_failure, lambda s, a, t, tmp: jobs.get_job(s.db, t, actor=a)),
    "job failures": (job_with_a_failure, lambda s, a, t, tmp: jobs.job_failures(s.db, t, actor=a)),
}


@pytest.mark.parametrize("service", READ_SERVICES)
def test_every_staff_role_and_the_system_may_use_each_read_service(sqlite_shop, tmp_path, service):
    prepare, call = READ_SERVICES[service]
    target = prepare(sqlite_shop)
    for name in STAFF_ROLES:
        assert call(sqlite_shop, reader_named(sqlite_shop, name), target, tmp_path) is not None, name
    assert call(sqlite_shop, SYSTEM, target, tmp_path) is not None


@pytest.mark.parametrize("service", READ_SERVICES)
def test_a_customer_a_deactivated_account_and_nobody_are_refused_each_read_service(
    sqlite_shop, tmp_path, service
):
    prepare, call = READ_SERVICES[service]
    target = prepare(sqlite_shop)
    for name in REFUSED:
        with pytest.raises(PermissionDenied) as refused:
            call(sqlite_shop, reader_named(sqlite_shop, name), target, tmp_path)
        assert str(refused.value).strip(), name
    assert not (tmp_path / "exports").exists(), "a refused export wrote a file"


def test_the_read_services_ask_for_their_actor_by_name():
    """No default: a caller that forgets the actor fails at once, never reads as someone."""
    for service in (
        queries.list_orders,
        queries.count_by_status,
        queries.order_detail,
        export_orders,
        analytics.build_report,
        analytics.report_csv,
        jobs.list_jobs,
        jobs.get_job,
        jobs.job_failures,
    ):
        with pytest.raises(TypeError, match="actor"):
            service(None, *([None] * (service.__code__.co_argcount - 1)))
