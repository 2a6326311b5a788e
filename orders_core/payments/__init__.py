"""Payment gateways behind one small interface; chosen by ORDERS_PAYMENT_GATEWAY."""

from __future__ import annotations

from typing import Protocol

from ..config import Settings, load_settings
from ..db import Database
from ..errors import OrdersError
from .base import Charge, GatewayRefund, PaymentGateway

GATEWAY_NAMES = ("simulated", "stripe")


def gateway_named(name: str, db: Database, settings: Settings | None = None) -> PaymentGateway:
    """The gateway `name`: the one configured for new charges, or the one that took
    an earlier payment (a refund always goes back through the gateway that charged)."""
    settings = settings or load_settings()
    if name == "simulated":
        from .simulated import SimulatedGateway

        return SimulatedGateway(db)
    if name == "stripe":
        from .stripe_gateway import StripeGateway

        return StripeGateway.from_settings(settings)
    raise OrdersError(f"Unknown payment gateway {name!r}; use one of {', '.join(GATEWAY_NAMES)}")


__all__ = ["Charge", "GatewayRefund", "PaymentGateway", "gateway_named", "GATEWAY_NAMES"]


class GatewayDirectory(Protocol):
    """Where a service finds its gateways: Gateways, or the job engine's paced ones."""

    @property
    def default(self) -> PaymentGateway: ...

    def named(self, name: str) -> PaymentGateway: ...


class Gateways:
    """The configured gateway for new charges, and any gateway by name for refunds
    of earlier payments; built once per process."""

    def __init__(self, db: Database, settings: Settings | None = None):
        self.db = db
        self.settings = settings or load_settings()
        self._by_name: dict[str, PaymentGateway] = {}

    @property
    def default(self) -> PaymentGateway:
        return self.named(self.settings.gateway)

    def named(self, name: str) -> PaymentGateway:
        if name not in self._by_name:
            self._by_name[name] = gateway_named(name, self.db, self.settings)
        return self._by_name[name]

    def use(self, gateway: PaymentGateway) -> Gateways:
        """Serve `gateway` under its name (tests wrap a gateway to inject faults)."""
        self._by_name[gateway.name] = gateway
        return self


__all__ += ["Gateways", "GatewayDirectory"]
