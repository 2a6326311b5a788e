"""Creating an order and paying for it.

An order is created (status created) in one transaction, together with a pending
payment row. The charge then runs in two gateway calls, create and confirm, with
the gateway's payment id committed in between: a crash at any point leaves a
pending payment that `recover_pending_payments` settles by asking the gateway what
became of it, so a retry never charges twice.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import uuid

from sqlalchemy import func, insert, select, update

from .catalog import skus_by_code
from .clock import utcnow
from .config import load_settings
from .customers import AddressInput, CustomerAccount, insert_address
from .db import Database
from .errors import (AuthenticationError, CardDeclined, GatewayUnavailable, InProgress,
                     InvalidToken, NotFound, OrdersError, PaymentError, PermissionDenied,
                     ValidationError)
from .lifecycle import event_row, resolve_order_id, write_events
from .money import MAX_AMOUNT, format_money
from .order_numbers import format_order_number
from .payments import Gateways
from .schema import addresses, order_items, orders, payments
from .staff import Actor, Permission, authorize, customer_actor
from .status import Action, Status, next_status
from .validation import clean_text, whole_number

MAX_LINES = 50
MAX_QUANTITY = 999
_TOKEN = re.compile(r"^[A-Za-z0-9_]{3,255}$")
_CHECKOUT_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_SECRET_PREFIXES = ("sk_", "rk_", "whsec_", "pk_")


@dataclasses.dataclass(frozen=True)
class CartItem:
    sku_code: str
    quantity: int


def check_card_token(token) -> str:
    """A card token or payment method id as Stripe issues them; never a key or a PAN."""
    if not isinstance(token, str) or not token.strip():
        raise InvalidToken("A card token is required (for example tok_visa).", "token_missing")
    token = token.strip()
    if token.startswith(_SECRET_PREFIXES):
        raise InvalidToken("That is an API key, not a card token. Never paste keys into a "
                           "checkout; use a card token such as tok_visa.", "secret_key_as_token")
    if re.fullmatch(r"[\d\s-]{12,30}", token):
        raise InvalidToken("That looks like a card number. Enter a card token (for example "
                           "tok_visa), never the card number itself.", "card_number_as_token")
    if not _TOKEN.fullmatch(token):
        raise InvalidToken("The card token is malformed; tokens look like tok_visa or pm_card_visa.",
                           "token_malformed")
    return token


def _clean_items(items) -> list[CartItem]:
    if not items:
        raise ValidationError("Add at least one item to the order.")
    if not isinstance(items, (list, tuple)):
        raise ValidationError("Items must be a list of SKU and quantity.")
    if len(items) > MAX_LINES:
        raise ValidationError(f"An order can have at most {MAX_LINES} lines.")
    merged: dict[str, int] = {}
    for item in items:
        if isinstance(item, CartItem):
            code, quantity = item.sku_code, item.quantity
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            code, quantity = item
        else:
            raise ValidationError("Each item is a SKU code and a quantity.")
        code = clean_text(code, "SKU code", max_length=64)
        quantity = whole_number(quantity, f"Quantity of {code}", minimum=1, maximum=MAX_QUANTITY)
        merged[code] = merged.get(code, 0) + quantity
        if merged[code] > MAX_QUANTITY:
            raise ValidationError(f"Quantity of {code} must be between 1 and {MAX_QUANTITY}.")
    return [CartItem(code, qty) for code, qty in merged.items()]


def _fingerprint(items: list[CartItem], address_id, address) -> str:
    payload = {"items": sorted((i.sku_code, i.quantity) for i in items),
               "address_id": address_id,
               "address": dataclasses.asdict(address) if address else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def place_order(db: Database, customer: CustomerAccount | None, *, items, token: str,
                address_id: int | None = None, address: AddressInput | None = None,
                checkout_key: str | None = None, gateways: Gateways | None = None) -> dict:
    """Create an order for a signed-in customer and charge the card.

    Returns the order detail; raises CardDeclined (the order stays created, the decline
    is in its timeline) or a ValidationError that stores nothing. A repeated
    `checkout_key` returns the first order instead of charging again."""
    from .queries import read_order

    if not isinstance(customer, CustomerAccount):
        raise AuthenticationError("Sign in to place an order.")
    cart = _clean_items(items)
    token = check_card_token(token)
    if checkout_key is not None:
        if not isinstance(checkout_key, str) or not _CHECKOUT_KEY.fullmatch(checkout_key):
            raise ValidationError("The checkout key is malformed.")
    if address_id is not None:
        address_id = whole_number(address_id, "Address id", minimum=1, maximum=2**31 - 1)
    clean_address = address.cleaned() if address is not None else None
    fingerprint = _fingerprint(cart, address_id, clean_address)
    gateways = gateways or Gateways(db)
    gateway = gateways.default
    settings = load_settings()

    if checkout_key is not None:
        with db.read() as conn:
            earlier = conn.execute(select(orders.c.number, orders.c.checkout_fingerprint).where(
                orders.c.customer_id == customer.id, orders.c.checkout_key == checkout_key)).first()
        if earlier is not None:
            if earlier.checkout_fingerprint != fingerprint:
                raise ValidationError(f"This checkout was already submitted as order "
                                      f"{earlier.number} with different items or address.")
            return read_order(db, earlier.number)

    with db.write() as conn:
        now = utcnow()
        listings = skus_by_code(conn, [i.sku_code for i in cart])
        for item in cart:
            listing = listings.get(item.sku_code)
            if listing is None:
                raise ValidationError(f"Unknown SKU {item.sku_code!r}.")
            if not listing.active:
                raise ValidationError(f"SKU {item.sku_code} is no longer for sale.")
        currencies = sorted({listings[i.sku_code].currency for i in cart})
        if len(currencies) > 1:
            raise ValidationError("All items of an order must be in one currency; this cart has "
                                  + " and ".join(c.upper() for c in currencies) + ".")
        currency = currencies[0]
        total = sum(listings[i.sku_code].unit_amount * i.quantity for i in cart)
        if total <= 0 or total > MAX_AMOUNT:
            raise ValidationError(f"The order total must be between {format_money(1, currency)} "
                                  f"and {format_money(MAX_AMOUNT, currency)}.")
        shipping = _shipping_address(conn, customer, cart, listings, address_id, clean_address)

        order_id = conn.execute(insert(orders).values(
            number=f"new-{uuid.uuid4().hex[:24]}",  # replaced by ORD-… once the id is known
            customer_id=customer.id, customer_email=customer.email, customer_name=customer.name,
            status=Status.CREATED.value, currency=currency, total_amount=total, refunded_amount=0,
            item_count=len(cart), checkout_key=checkout_key, checkout_fingerprint=fingerprint,
            created_at=now, updated_at=now,
            **({f"ship_{k}": v for k, v in dataclasses.asdict(shipping).items()} if shipping else {}),
        )).inserted_primary_key[0]
        number = format_order_number(order_id)
        conn.execute(update(orders).where(orders.c.id == order_id).values(number=number))
        conn.execute(insert(order_items), [
            {"order_id": order_id, "sku_id": listings[i.sku_code].id, "sku_code": i.sku_code,
             "name": listings[i.sku_code].name, "product_name": listings[i.sku_code].product,
             "quantity": i.quantity, "unit_amount": listings[i.sku_code].unit_amount,
             "amount": listings[i.sku_code].unit_amount * i.quantity} for i in cart])
        write_events(conn, [event_row(order_id, customer.email, "create", None, Status.CREATED,
                                      "Checkout", at=now)])
        payment_id, key = _insert_pending_payment(conn, order_id, number, gateway.name, total,
                                                  currency, now, settings.payment_lease_seconds)

    _charge(db, gateway, customer.email, order_id, number, payment_id, key, total, currency, token)
    return read_order(db, number)


def _shipping_address(conn, customer, cart, listings, address_id, clean_address):
    if not any(listings[i.sku_code].shippable for i in cart):
        return None  # digital goods: an address given anyway is not stored
    if address_id is not None:
        row = conn.execute(select(addresses).where(addresses.c.id == address_id)).first()
        if row is None or row.customer_id != customer.id:
            raise ValidationError(f"Address {address_id} is not one of your saved addresses.")
        return AddressInput(name=row.name, line1=row.line1, line2=row.line2 or "", city=row.city,
                            region=row.region or "", postal_code=row.postal_code,
                            country=row.country)
    if clean_address is None:
        raise ValidationError("A shipping address is required: this order has items that ship.")
    insert_address(conn, customer.id, clean_address)
    return clean_address


def _insert_pending_payment(conn, order_id, number, gateway_name, amount, currency, now,
                            lease_seconds) -> tuple[int, str]:
    attempt = conn.execute(select(func.count()).select_from(payments).where(
        payments.c.order_id == order_id)).scalar_one() + 1
    key = f"{number}:charge:{attempt}"
    payment_id = conn.execute(insert(payments).values(
        order_id=order_id, gateway=gateway_name, amount=amount, currency=currency,
        status="pending", idempotency_key=key, created_at=now, updated_at=now,
        locked_until=now + dt.timedelta(seconds=lease_seconds))).inserted_primary_key[0]
    return payment_id, key


def _charge(db, gateway, actor_label, order_id, number, payment_id, key, amount, currency, token):
    confirming = False  # until confirm is sent, no money can have moved
    try:
        created = gateway.create_payment(amount=amount, currency=currency, reference=number,
                                         idempotency_key=f"{key}:create")
        with db.write() as conn:
            conn.execute(update(payments).where(payments.c.id == payment_id).values(
                gateway_payment_id=created.payment_id, updated_at=utcnow()))
        confirming = True
        charge = gateway.confirm_payment(created.payment_id, token=token,
                                         idempotency_key=f"{key}:confirm")
    except (CardDeclined, InvalidToken) as declined:
        _record_failed_payment(db, actor_label, order_id, number, payment_id, declined)
        raise type(declined)(f"Payment for order {number} was declined: {declined}"
                             + (f" ({declined.code})" if declined.code else ""), declined.code) from None
    except GatewayUnavailable as error:
        _release_payment(db, payment_id)
        if confirming:
            message = (f"The payment gateway did not answer, so whether order {number} was "
                       f"charged is not known yet. Paying again first checks with the gateway "
                       f"and never charges twice. ({error})")
        else:
            message = (f"The payment gateway is unavailable; order {number} was not charged. "
                       f"Try paying again. ({error})")
        raise GatewayUnavailable(message, error.code, error.retry_after) from None
    except PaymentError as error:
        _record_failed_payment(db, actor_label, order_id, number, payment_id, error)
        raise
    except Exception:
        _release_payment(db, payment_id)
        raise
    if not charge.succeeded:
        _record_failed_payment(db, actor_label, order_id, number, payment_id, PaymentError(
            charge.message or f"The payment ended as {charge.status}.", charge.decline_code))
        raise CardDeclined(f"Payment for order {number} did not complete: {charge.status}.",
                           charge.decline_code)
    _record_paid(db, actor_label, order_id, number, payment_id, charge.payment_id, gateway.name,
                 amount, currency)


def _record_paid(db, actor_label, order_id, number, payment_id, gateway_payment_id, gateway_name,
                 amount, currency) -> None:
    with db.write() as conn:
        now = utcnow()
        conn.execute(update(payments).where(payments.c.id == payment_id).values(
            status="succeeded", gateway_payment_id=gateway_payment_id, locked_until=None,
            updated_at=now))
        moved = conn.execute(update(orders).where(
            orders.c.id == order_id, orders.c.status == Status.CREATED.value).values(
            status=Status.PAID.value, paid_at=now, updated_at=now)).rowcount
        note = f"Charged {format_money(amount, currency)} via {gateway_name} ({gateway_payment_id})"
        if moved:
            write_events(conn, [event_row(order_id, actor_label, "pay", Status.CREATED,
                                          Status.PAID, note, at=now)])
        else:
            current = conn.execute(select(orders.c.status).where(orders.c.id == order_id)).scalar_one()
            write_events(conn, [event_row(order_id, actor_label, "payment_received", current, None,
                                          note + "; the order had already moved on, refund it "
                                          "from the payment record", at=now)])


def _record_failed_payment(db, actor_label, order_id, number, payment_id, error) -> None:
    with db.write() as conn:
        now = utcnow()
        conn.execute(update(payments).where(payments.c.id == payment_id).values(
            status="failed", failure_code=getattr(error, "code", None),
            failure_message=str(error), locked_until=None, updated_at=now))
        status = conn.execute(select(orders.c.status).where(orders.c.id == order_id)).scalar_one()
        code = getattr(error, "code", None)
        label = "Card declined" if isinstance(error, CardDeclined) else "Payment failed"
        write_events(conn, [event_row(order_id, actor_label, "payment_failed", status, None,
                                      f"{label}: {code + ' — ' if code else ''}{error}", at=now)])


def _release_payment(db, payment_id) -> None:
    try:
        with db.write() as conn:
            conn.execute(update(payments).where(payments.c.id == payment_id,
                                                payments.c.status == "pending")
                         .values(locked_until=None))
    except Exception:
        pass  # the lease runs out by itself


def recover_pending_payments(db: Database, gateways: Gateways, order_ids: list[int]) -> set[int]:
    """Settle charges left pending by a crash or an outage, by asking the gateway.
    Returns the orders found paid that way."""
    paid: set[int] = set()
    if not order_ids:
        return paid
    now = utcnow()
    with db.read() as conn:
        stuck = conn.execute(select(payments, orders.c.number).join(
            orders, orders.c.id == payments.c.order_id).where(
            payments.c.order_id.in_(order_ids), payments.c.status == "pending")).all()
    for row in stuck:
        if row.locked_until is not None and row.locked_until > now:
            continue  # someone is charging it right now
        with db.write() as conn:  # take the lease so two recoveries do not race
            taken = conn.execute(update(payments).where(
                payments.c.id == row.id, payments.c.status == "pending",
                (payments.c.locked_until.is_(None)) | (payments.c.locked_until <= now)).values(
                locked_until=now + dt.timedelta(seconds=load_settings().payment_lease_seconds))
            ).rowcount
        if not taken:
            continue
        if row.gateway_payment_id is None:
            _record_failed_payment(db, "system", row.order_id, row.number, row.id, PaymentError(
                "The attempt stopped before reaching the payment gateway; nothing was charged.",
                "abandoned"))
            continue
        try:
            gateway = gateways.named(row.gateway)
            charge = gateway.retrieve_payment(row.gateway_payment_id)
            if not charge.succeeded:
                # The confirm may still be on its way (a slow network outlives any lease):
                # cancel the intent so it can never be charged after we call it failed.
                charge = gateway.cancel_payment(row.gateway_payment_id)
        except PaymentError:
            # The gateway cannot say now: the attempt stays pending (the order shows a
            # payment in progress) and the next attempt asks again.
            _release_payment(db, row.id)
            continue
        if not charge.succeeded and charge.status != "canceled":
            _release_payment(db, row.id)  # still processing at the gateway: ask again later
            continue
        if charge.succeeded:
            _record_paid(db, "system", row.order_id, row.number, row.id, charge.payment_id,
                         row.gateway, row.amount, row.currency)
            paid.add(row.order_id)
        else:
            _record_failed_payment(db, "system", row.order_id, row.number, row.id, PaymentError(
                "The attempt was interrupted and the gateway holds no completed charge; "
                "nothing was charged.", charge.decline_code or "interrupted"))
    return paid


def pay_order(db: Database, actor: Actor, number: str, *, token: str,
              gateways: Gateways | None = None) -> dict:
    """Charge the card for an order still Created (a retry after a decline)."""
    from .queries import read_order

    actor = authorize(db, actor, Permission.PAY)
    token = check_card_token(token)
    order_id = resolve_order_id(db, number)
    if actor.kind == "customer":
        with db.read() as conn:
            owner = conn.execute(select(orders.c.customer_id).where(orders.c.id == order_id)).scalar_one()
        if owner != actor.customer_id:
            raise PermissionDenied(f"Order {format_order_number(order_id)} is not yours.")
    gateways = gateways or Gateways(db)
    if order_id in recover_pending_payments(db, gateways, [order_id]):
        return read_order(db, format_order_number(order_id))  # an interrupted attempt had paid it
    gateway = gateways.default
    settings = load_settings()
    with db.write() as conn:
        now = utcnow()
        query = select(orders).where(orders.c.id == order_id)
        if db.is_postgres:
            query = query.with_for_update()
        order = conn.execute(query).one()
        next_status(order.number, Status(order.status), Action.PAY)
        busy = conn.execute(select(payments.c.id).where(
            payments.c.order_id == order_id, payments.c.status == "pending")).first()
        if busy is not None:
            raise InProgress(f"A payment for order {order.number} is in progress; try again shortly.")
        payment_id, key = _insert_pending_payment(conn, order_id, order.number, gateway.name,
                                                  order.total_amount, order.currency, now,
                                                  settings.payment_lease_seconds)
    _charge(db, gateway, actor.label, order_id, order.number, payment_id, key,
            order.total_amount, order.currency, token)
    return read_order(db, order.number)


__all__ = ["CartItem", "place_order", "pay_order", "recover_pending_payments",
           "check_card_token", "customer_actor", "NotFound", "OrdersError"]
