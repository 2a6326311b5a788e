"""The job engine's pure rules: gateway rates, refund batch sizes, retry delays."""

from __future__ import annotations

import dataclasses

from orders_core.config import load_settings
from orders_core.errors import GatewayUnavailable
from orders_core.job_engine.moves import backoff
from orders_core.job_engine.pacing import gateway_rate, refund_batch_size


def settings(**changes):
    return dataclasses.replace(load_settings(), **changes)


def test_stripe_is_paced_at_its_test_mode_limit_and_the_simulated_gateway_not_at_all():
    defaults = settings(gateway_requests_per_second=None)
    assert gateway_rate("stripe", defaults) == 25.0
    assert gateway_rate("simulated", defaults) is None


def test_ORDERS_GATEWAY_RPS_paces_every_gateway():
    chosen = settings(gateway_requests_per_second=7.0)
    assert gateway_rate("stripe", chosen) == gateway_rate("simulated", chosen) == 7.0


def test_refunds_are_claimed_in_batches_whose_calls_end_within_their_lease():
    # 60 requests/s, a 1 s lease and about three requests per order: 10 orders at a time.
    assert (
        refund_batch_size(settings(gateway_requests_per_second=60.0, payment_lease_seconds=1), chunk_size=25)
        == 10
    )
    # Never fewer than 10, never more than a chunk.
    assert (
        refund_batch_size(settings(gateway_requests_per_second=1.0, payment_lease_seconds=1), chunk_size=25)
        == 10
    )
    assert (
        refund_batch_size(
            settings(gateway_requests_per_second=1000.0, payment_lease_seconds=60), chunk_size=25
        )
        == 25
    )


def test_retries_wait_longer_each_time_up_to_five_seconds():
    assert [backoff(tries, []) for tries in (1, 2, 3, 6, 10)] == [0.25, 0.5, 1.0, 5.0, 5.0]


def test_a_retry_waits_at_least_as_long_as_the_gateway_asked_but_never_over_30_seconds():
    assert backoff(1, [GatewayUnavailable("busy", retry_after=12)]) == 12.0
    assert backoff(1, [GatewayUnavailable("busy", retry_after=600)]) == 30.0
