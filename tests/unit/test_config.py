"""Settings: read from the environment once per process, with safe defaults."""

from __future__ import annotations

import pytest

from orders_core.config import ConfigError, load_settings, reload_settings


def test_settings_are_read_once_until_reloaded(monkeypatch):
    first = load_settings()
    assert load_settings() is first
    monkeypatch.setenv("ORDERS_JOB_CHUNK_SIZE", "7")  # the fixture's setenv drops the cache
    assert load_settings().job_chunk_size == 7
    assert reload_settings() is not first


def test_mass_action_thresholds_default_to_100_orders_and_100000_minor_units(monkeypatch):
    monkeypatch.delenv("ORDERS_CONFIRM_ABOVE_ORDERS", raising=False)
    monkeypatch.delenv("ORDERS_CONFIRM_ABOVE_REFUND", raising=False)
    settings = load_settings()
    assert (settings.confirm_above_orders, settings.confirm_above_refund) == (100, 100_000)


def test_a_mistyped_threshold_falls_back_to_its_default_instead_of_failing(monkeypatch, caplog):
    monkeypatch.setenv("ORDERS_CONFIRM_ABOVE_ORDERS", "5")
    monkeypatch.setenv("ORDERS_CONFIRM_ABOVE_REFUND", "not a number")
    settings = load_settings()
    assert (settings.confirm_above_orders, settings.confirm_above_refund) == (5, 100_000)
    assert "ORDERS_CONFIRM_ABOVE_REFUND must be a whole number >= 0" in caplog.text


@pytest.mark.parametrize(("raw", "debug"), [("1", True), ("0", False), ("", False), ("yes", False)])
def test_debug_is_on_only_for_1(monkeypatch, raw, debug):
    monkeypatch.setenv("ORDERS_DEBUG", raw)
    assert load_settings().debug is debug


def test_a_bad_value_is_refused_again_at_every_read(monkeypatch):
    monkeypatch.setenv("ORDERS_SESSION_MAX_DAYS", "0")
    for _ in range(2):  # a failed read is not cached
        with pytest.raises(ConfigError, match="ORDERS_SESSION_MAX_DAYS must be at least 1"):
            load_settings()
