"""Creating an order and paying for it, and how a repeated checkout resumes.

An order is created (status created) in one transaction, together with a pending
payment row; the charge then runs crash-safe in orders_core/charging.py. A checkout
submitted again with the same key (a double click, a rerun, a retry with another
card after a decline, a second process racing the first) goes through
`submit_checkout`, the one policy the pages and the CLI share.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from .catalog import skus_by_code
from .charging import charge_card, insert_pending_payment, recover_pending_payments
from .clock import utcnow
from .config import load_settings
from .customers import AddressInput, CustomerAccount, insert_address
from .db import Database
from .errors import (
    AuthenticationError,
    InProgress,
    InvalidToken,
    NotFound,
    OrdersError,
    PermissionDenied,
    ValidationError,
)
from .lifecycle import resolve_order_id
from .money import MAX_AMOUNT, format_money
from .order_detail import OrderDetail
from .order_numbers import format_order_number, order_number_sql
from .payments import Gateways
from .queries import read_order
from .schema import addresses, order_items, orders, payments
from .staff import Actor, ActorKind, Permission, authorize, customer_actor
from .status import Action, IllegalMove, PaymentStatus, Status, next_status
from .timeline import EventKind, event_row, write_events
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
        raise InvalidToken(
            "That is an API key, not a card token. Never paste keys into a "
            "checkout; use a card token such as tok_visa.",
            "secret_key_as_token",
        )
    if re.fullmatch(r"[\d\s-]{12,30}", token):
        raise InvalidToken(
            "That looks like a card number. Enter a card token (for example "
            "tok_visa), never the card number itself.",
            "card_number_as_token",
        )
    if not _TOKEN.fullmatch(token):
        raise InvalidToken(
            "The card token is malformed; tokens look like tok_visa or pm_card_visa.", "token_malformed"
        )
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
    payload = {
        "items": sorted((i.sku_code, i.quantity) for i in items),
        "address_id": address_id,
        "address": dataclasses.asdict(address) if address else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def place_order(
    db: Database,
    customer: CustomerAccount | None,
    *,
    items,
    token: str,
    address_id: int | None = None,
    address: AddressInput | None = None,
    checkout_key: str | None = None,
    gateways: Gateways | None = None,
) -> OrderDetail:
    """Create an order for a signed-in customer and charge the card.

    Returns the order detail; raises CardDeclined (the order stays created, the decline
    is in its timeline) or a ValidationError that stores nothing. A repeated
    `checkout_key` returns the first order as it is, never charging again (to resume a
    declined one with a new card, use `submit_checkout`)."""
    if not isinstance(customer, CustomerAccount):
        raise AuthenticationError("Sign in to place an order.")
    cart = _clean_items(items)
    token = check_card_token(token)
    if checkout_key is not None and (
        not isinstance(checkout_key, str) or not _CHECKOUT_KEY.fullmatch(checkout_key)
    ):
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
            earlier = conn.execute(
                select(orders.c.number, orders.c.checkout_fingerprint).where(
                    orders.c.customer_id == customer.id, orders.c.checkout_key == checkout_key
                )
            ).first()
        if earlier is not None:
            if earlier.checkout_fingerprint != fingerprint:
                raise ValidationError(
                    f"This checkout was already submitted as order "
                    f"{earlier.number} with different items or address."
                )
            return read_order(db, earlier.number)

    with db.one_connection():  # its three transactions and the read: one checkout from the pool
        order_id, number, payment_id, key, total, currency = _create_order(
            db, customer, cart, checkout_key, fingerprint, address_id, clean_address, gateway.name, settings
        )
        charge_card(db, gateway, customer.email, order_id, number, payment_id, key, total, currency, token)
        return read_order(db, number)


def _create_order(
    db, customer, cart, checkout_key, fingerprint, address_id, clean_address, gateway_name, settings
):
    """The order, its items, its creation event and its pending payment, in one
    transaction committed before the gateway is called."""
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
            raise ValidationError(
                "All items of an order must be in one currency; this cart has "
                + " and ".join(c.upper() for c in currencies)
                + "."
            )
        currency = currencies[0]
        total = sum(listings[i.sku_code].unit_amount * i.quantity for i in cart)
        if total <= 0 or total > MAX_AMOUNT:
            raise ValidationError(
                f"The order total must be between {format_money(1, currency)} "
                f"and {format_money(MAX_AMOUNT, currency)}."
            )
        shipping = _shipping_address(conn, customer, cart, listings, address_id, clean_address)

        row = dict(
            customer_id=customer.id,
            customer_email=customer.email,
            customer_name=customer.name,
            status=Status.CREATED.value,
            currency=currency,
            total_amount=total,
            refunded_amount=0,
            item_count=len(cart),
            checkout_key=checkout_key,
            checkout_fingerprint=fingerprint,
            created_at=now,
            updated_at=now,
            **({f"ship_{k}": v for k, v in dataclasses.asdict(shipping).items()} if shipping else {}),
        )
        if db.is_postgres:
            order_id, number = _insert_numbered_order(conn, row)
        else:
            order_id = conn.execute(
                # the number is replaced by ORD-… once the id is known
                insert(orders).values(number=f"new-{uuid.uuid4().hex[:24]}", **row)
            ).inserted_primary_key[0]
            number = format_order_number(order_id)
            conn.execute(update(orders).where(orders.c.id == order_id).values(number=number))
        conn.execute(
            insert(order_items),
            [
                {
                    "order_id": order_id,
                    "sku_id": listings[i.sku_code].id,
                    "sku_code": i.sku_code,
                    "name": listings[i.sku_code].name,
                    "product_name": listings[i.sku_code].product,
                    "quantity": i.quantity,
                    "unit_amount": listings[i.sku_code].unit_amount,
                    "amount": listings[i.sku_code].unit_amount * i.quantity,
                }
                for i in cart
            ],
        )
        write_events(
            conn,
            [event_row(order_id, customer.email, EventKind.CREATE, None, Status.CREATED, "Checkout", at=now)],
        )
        payment_id, key = insert_pending_payment(
            conn,
            order_id,
            number,
            gateway_name,
            total,
            currency,
            now,
            settings.payment_lease_seconds,
            first_attempt=True,
        )
    return order_id, number, payment_id, key, total, currency


def _insert_numbered_order(conn, row: dict) -> tuple[int, str]:
    """PostgreSQL: the order inserted with its number made from its id in the same
    statement (the id drawn from the sequence first), one round trip instead of two."""
    new_id = select(func.nextval(func.pg_get_serial_sequence("orders", "id")).label("id")).cte("new_order_id")
    names = list(row)
    inserted = conn.execute(
        insert(orders)
        .from_select(
            ["id", "number", *names],
            select(
                new_id.c.id,
                order_number_sql(new_id.c.id),
                *(literal(row[n], orders.c[n].type) for n in names),
            ),
        )
        .returning(orders.c.id, orders.c.number)
    ).one()
    return inserted.id, inserted.number


def _shipping_address(conn, customer, cart, listings, address_id, clean_address):
    if not any(listings[i.sku_code].shippable for i in cart):
        return None  # digital goods: an address given anyway is not stored
    if address_id is not None:
        row = conn.execute(select(addresses).where(addresses.c.id == address_id)).first()
        if row is None or row.customer_id != customer.id:
            raise ValidationError(f"Address {address_id} is not one of your saved addresses.")
        return AddressInput(
            name=row.name,
            line1=row.line1,
            line2=row.line2 or "",
            city=row.city,
            region=row.region or "",
            postal_code=row.postal_code,
            country=row.country,
        )
    if clean_address is None:
        raise ValidationError("A shipping address is required: this order has items that ship.")
    insert_address(conn, customer.id, clean_address)
    return clean_address


def pay_order(
    db: Database, actor: Actor, number: str, *, token: str, gateways: Gateways | None = None
) -> OrderDetail:
    """Charge the card for an order still Created (a retry after a decline)."""
    actor = authorize(db, actor, Permission.PAY)
    token = check_card_token(token)
    order_id = resolve_order_id(db, number)
    if actor.kind == ActorKind.CUSTOMER:
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
        busy = conn.execute(
            select(payments.c.id).where(
                payments.c.order_id == order_id, payments.c.status == PaymentStatus.PENDING.value
            )
        ).first()
        if busy is not None:
            raise InProgress(f"A payment for order {order.number} is in progress; try again shortly.")
        payment_id, key = insert_pending_payment(
            conn,
            order_id,
            order.number,
            gateway.name,
            order.total_amount,
            order.currency,
            now,
            settings.payment_lease_seconds,
        )
    charge_card(
        db,
        gateway,
        actor.label,
        order_id,
        order.number,
        payment_id,
        key,
        order.total_amount,
        order.currency,
        token,
    )
    return read_order(db, order.number)


def submit_checkout(
    db: Database,
    customer: CustomerAccount | None,
    *,
    items,
    token: str,
    address_id: int | None = None,
    address: AddressInput | None = None,
    checkout_key: str | None = None,
    gateways: Gateways | None = None,
) -> OrderDetail:
    """Place an order, or resume the one this checkout key already made.

    The page and the CLI both submit through here. With a key seen before (same cart
    and address; another cart is refused):
    - an order already paid (or moved on) is returned as it is, charged once;
    - an order still Created after a decline is paid with this `token`;
    - an order whose payment is still under way is returned as it is (its latest
      attempt pending), never charged a second time.
    A concurrent submit of the same key that loses the race to insert the order
    (IntegrityError) reads the winner's order back and resumes it the same way; one
    that finds the order paid or being paid by the other by the time it would pay
    returns it as it is then."""
    gateways = gateways or Gateways(db)
    try:
        order = place_order(
            db,
            customer,
            items=items,
            token=token,
            address_id=address_id,
            address=address,
            checkout_key=checkout_key,
            gateways=gateways,
        )
    except IntegrityError:
        if checkout_key is None:
            raise  # not a duplicate checkout: nothing of ours to read back
        order = place_order(
            db,
            customer,
            items=items,
            token=token,
            address_id=address_id,
            address=address,
            checkout_key=checkout_key,
            gateways=gateways,
        )
    if order.status != Status.CREATED or order.payment_in_flight:
        return order
    try:
        return pay_order(
            db, customer_actor(customer.id, customer.email), order.number, token=token, gateways=gateways
        )
    except (IllegalMove, InProgress):
        # A concurrent submit of this checkout paid it, or is paying it, since we read it.
        return read_order(db, order.number)


def payment_in_flight(order: OrderDetail) -> bool:
    """The order detail's latest charge attempt is still pending at the gateway."""
    return order.payment_in_flight


__all__ = [
    "CartItem",
    "place_order",
    "pay_order",
    "submit_checkout",
    "payment_in_flight",
    "recover_pending_payments",
    "check_card_token",
    "customer_actor",
    "NotFound",
    "OrdersError",
]
