"""Payment gateways behind one small interface; chosen by ORDERS_PAYMENT_GATEWAY."""
from __future__ import annotations

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
