"""Demo checkout: test purchases as a customer, paid with Stripe's test card tokens.

Customers sign in here, separately from staff (their account lives under
session.CUSTOMER_KEY). Each checkout has a key (session state) that submit_checkout
uses to make a double click or a rerun return the first order instead of charging
again. The key is kept after a decline, so paying again with another card retries the
same order (submit_checkout decides how); it is renewed once the cart changes after
an order, or on "Start a new order".
"""

from __future__ import annotations

import dataclasses
import uuid

import pandas as pd
import streamlit as st

from orders_core import catalog, customers
from orders_core.addresses import PostalAddress, address_one_line
from orders_core.checkout import CartItem, payment_in_flight, submit_checkout
from orders_core.customers import AddressInput
from orders_core.errors import CardDeclined, FieldErrors, InvalidToken, OrdersError
from orders_core.status import Status
from pages.ui import card_tokens, display, resources, session, statuses

KEY = "checkout_key"  # the current checkout's idempotency key
OUTCOME = "checkout_outcome"  # what the last submit did, shown until the next one
LAST = "checkout_last"  # (key, cart signature, status) of the last order
FIELD_ERRORS = "checkout_field_errors"  # address field -> message, from the last submit
NEW_ADDRESS = 0


def new_checkout_key() -> str:
    return f"co_{uuid.uuid4().hex}"


def reset_checkout() -> None:
    st.session_state[KEY] = new_checkout_key()
    st.session_state.pop(OUTCOME, None)
    st.session_state.pop(LAST, None)


def sign_out_customer() -> None:
    for key in (session.CUSTOMER_KEY, KEY, OUTCOME, LAST):
        st.session_state.pop(key, None)


# -- customer account -------------------------------------------------------------------


def account_forms(db) -> None:
    st.subheader("Customer account")
    st.caption(
        "Customer accounts are separate from staff accounts. The demo customer is "
        "customer@ordersdesk.test with the password demo-password."
    )
    sign_in_tab, sign_up_tab = st.tabs(["Sign in", "Create an account"])
    with sign_in_tab:
        with st.form("checkout_sign_in_form"):
            email = st.text_input("Email", key="checkout_sign_in_email")
            password = st.text_input("Password", type="password", key="checkout_sign_in_password")
            submitted = st.form_submit_button("Sign in", type="primary", key="checkout_sign_in")
        if submitted:
            try:
                account = customers.sign_in(db, email=email, password=password)
            except OrdersError as error:
                st.error(display.escape_markdown(error))
            else:
                st.session_state[session.CUSTOMER_KEY] = account
                st.rerun()
    with sign_up_tab:
        with st.form("checkout_sign_up_form"):
            name = st.text_input("Full name", key="checkout_sign_up_name")
            email = st.text_input("Email", key="checkout_sign_up_email")
            password = st.text_input(
                "Password", type="password", key="checkout_sign_up_password", help="At least 8 characters."
            )
            submitted = st.form_submit_button("Create account", type="primary", key="checkout_sign_up")
        if submitted:
            try:
                account = customers.sign_up(db, email=email, name=name, password=password)
            except OrdersError as error:
                st.error(display.escape_markdown(error))
            else:
                st.session_state[session.CUSTOMER_KEY] = account
                st.rerun()


def account_bar(account) -> None:
    with st.container(border=True):
        left, right = st.columns([5, 1], vertical_alignment="center")
        with left:
            st.caption(":material/person: Signed in as")
            st.text(f"{account.name} · {account.email}")  # the customer's own text, never markup
        if right.button("Sign out", key="checkout_sign_out", width="stretch"):
            sign_out_customer()
            st.rerun()


# -- the shop ------------------------------------------------------------------------------


def address_text(address) -> str:
    """One line, by the country's convention (orders_core.addresses)."""
    return address_one_line(
        PostalAddress(
            **{f: getattr(address, f) or "" for f in ("name", "line1", "line2", "city", "region")},
            postal_code=address.postal_code or "",
            country=address.country or "",
        )
    )


def field_error(field: str) -> None:
    """The message for `field` from the last submit, under the field itself."""
    message = (st.session_state.get(FIELD_ERRORS) or {}).get(field)
    if message:
        st.error(display.escape_markdown(message), icon=":material/error:")


def pick_address(db, account):
    """(address_id, AddressInput or None, signature) for a shippable cart."""
    saved = customers.list_addresses(db, account)
    options = [a.id for a in saved] + [NEW_ADDRESS]
    labels = {a.id: display.escape_markdown(address_text(a)) for a in saved}  # radio labels are markdown
    labels[NEW_ADDRESS] = "A new address"
    choice = st.radio(
        "Ship to",
        options,
        format_func=lambda i: labels.get(i, "A new address"),
        key="checkout_address_choice",
        index=0,
    )
    if choice != NEW_ADDRESS:
        return choice, None, ("saved", choice)
    with st.container(border=True):
        name = st.text_input("Recipient", value=account.name, key="checkout_addr_name")
        field_error("name")
        line1 = st.text_input("Address line 1", key="checkout_addr_line1")
        field_error("line1")
        line2 = st.text_input("Address line 2 (optional)", key="checkout_addr_line2")
        field_error("line2")
        city_col, region_col = st.columns(2)
        city = city_col.text_input("City", key="checkout_addr_city")
        with city_col:
            field_error("city")
        region = region_col.text_input("Region / state (optional)", key="checkout_addr_region")
        with region_col:
            field_error("region")
        postal_col, country_col = st.columns(2)
        postal = postal_col.text_input("Postal code", key="checkout_addr_postal")
        with postal_col:
            field_error("postal_code")
        country = country_col.text_input(
            "Country (2 letters)", max_chars=2, placeholder="US", key="checkout_addr_country"
        )
        with country_col:
            field_error("country")
    address = AddressInput(
        name=name, line1=line1, line2=line2, city=city, region=region, postal_code=postal, country=country
    )
    return None, address, ("new",) + tuple(dataclasses.astuple(address))


def submit(db, account, items, token, address_id, address, signature) -> None:
    """Place the order (or pay again for the same one after a decline); never twice.
    Field messages of an earlier submit were drawn above: redrawn without them."""
    had_field_errors = bool(st.session_state.pop(FIELD_ERRORS, None))
    place_order_once(db, account, items, token, address_id, address, signature)
    if had_field_errors:
        st.rerun()


def place_order_once(db, account, items, token, address_id, address, signature) -> None:
    last = st.session_state.get(LAST)
    if last is not None and last["key"] == st.session_state[KEY] and last["cart"] != signature:
        st.session_state[KEY] = new_checkout_key()  # a different cart: a new order
    key = st.session_state[KEY]
    try:
        order = submit_checkout(
            db,
            account,
            items=items,
            token=token,
            address_id=address_id,
            address=address,
            checkout_key=key,
            gateways=resources.get_gateways(),
        )
    except (CardDeclined, InvalidToken) as error:
        number = error.order_number
        st.session_state[OUTCOME] = {
            "kind": "declined",
            "message": str(error),
            "code": error.code,
            "number": number,
        }
        if number:
            st.session_state[LAST] = {"key": key, "cart": signature, "status": Status.CREATED.value}
        return
    except FieldErrors as error:
        st.session_state[FIELD_ERRORS] = error.fields
        st.session_state[OUTCOME] = {
            "kind": "error",
            "message": f"Nothing was ordered: {len(error.fields)} address "
            + ("field needs" if len(error.fields) == 1 else "fields need")
            + " attention (shown at each field).",
        }
        st.rerun()  # so each message shows under its field, drawn above this button
    except OrdersError as error:
        st.session_state[OUTCOME] = {"kind": "error", "message": str(error)}
        return
    if order.status == Status.CREATED and payment_in_flight(order):
        st.session_state[OUTCOME] = {"kind": "pending", "order": order}
        return
    st.session_state[OUTCOME] = {"kind": "placed", "order": order}
    st.session_state[LAST] = {"key": key, "cart": signature, "status": order.status.value}


def show_outcome() -> None:
    outcome = st.session_state.get(OUTCOME)
    if not outcome:
        return
    if outcome["kind"] == "placed":
        order = outcome["order"]
        status = order.status
        with st.container(border=True, key="checkout_receipt"):
            if status in (Status.PAID, Status.FULFILLED):
                st.success(f"Order **{order.number}** is placed and paid.", icon=":material/check_circle:")
            else:
                st.info(f"Order **{order.number}** is {statuses.status_label(status).lower()}.")
            number_col, status_col, total_col, items_col = st.columns(4)
            number_col.metric("Order number", order.number)
            status_col.metric("Status", statuses.status_label(status))
            total_col.metric("Total", display.money(order.total_amount, order.currency))
            items_col.metric("Items", f"{order.quantity:,}")
            items = pd.DataFrame(
                [
                    {
                        "SKU": i.sku,
                        "Item": f"{i.product} — {i.name}",
                        "Qty": i.quantity,
                        "Unit price": display.money(i.unit_amount, order.currency),
                        "Amount": display.money(i.amount, order.currency),
                    }
                    for i in order.items
                ]
            )
            st.dataframe(items, hide_index=True, width="stretch")
            if order.shipping_address:
                st.caption("Ships to")
                st.text("\n".join(order.shipping_address.lines()))
            st.button(
                "Start a new order",
                key="checkout_new_order",
                on_click=reset_checkout,
                icon=":material/add_shopping_cart:",
            )
    elif outcome["kind"] == "declined":
        with st.container(border=True, key="checkout_declined"):
            st.error(display.escape_markdown(outcome["message"]), icon=":material/credit_card_off:")
            if outcome.get("number"):
                st.caption(
                    f"Order {outcome['number']} stays unpaid. Choose another card token "
                    f"and place the order again to retry the payment for it."
                )
    elif outcome["kind"] == "pending":
        st.info(
            f"The payment for order {outcome['order'].number} is still being processed. "
            f"Wait a moment and place the order again to see the result.",
            icon=":material/hourglass_top:",
        )
    else:
        st.error(display.escape_markdown(outcome["message"]))


def shop(db, account) -> None:
    listings = catalog.list_skus(db, active_only=True)
    if not listings:
        st.info(
            "Nothing is for sale yet: the catalog is empty. Add the demo catalog with "
            "`python -m orders_core seed`.",
            icon=":material/inventory_2:",
        )
        return
    if KEY not in st.session_state:
        st.session_state[KEY] = new_checkout_key()

    products: dict[int, list] = {}
    for listing in listings:
        products.setdefault(listing.product_id, []).append(listing)

    outcome_slot = st.container()  # the receipt or the decline, above the form
    shop_col, summary_col = st.columns([3, 2], gap="large")
    with shop_col:
        st.subheader("1 · Product")
        product_id = st.selectbox(
            "Product",
            list(products),
            format_func=lambda pid: (
                f"{products[pid][0].product} · " + ("ships" if products[pid][0].shippable else "digital")
            ),
            key="checkout_product",
        )
        skus = {s.code: s for s in products[product_id]}
        sku_col, qty_col = st.columns([3, 1])
        code = sku_col.selectbox(
            "Option",
            list(skus),
            format_func=lambda c: f"{skus[c].name} — {display.money(skus[c].unit_amount, skus[c].currency)}",
            key="checkout_sku",
        )
        if code not in skus:  # the product changed under a kept SKU choice
            code = next(iter(skus))
        listing = skus[code]
        quantity = qty_col.number_input(
            "Quantity", min_value=1, max_value=999, value=1, step=1, key="checkout_quantity"
        )
        st.caption(
            f"SKU {display.escape_markdown(listing.code)} · "
            + ("ships to an address" if listing.shippable else "digital, nothing is shipped")
        )

        st.subheader("2 · Payment")
        token = card_tokens.pick_token("checkout_token")
        card_tokens.tokens_help()

        address_id, address, address_sig = None, None, None
        if listing.shippable:
            st.subheader("3 · Shipping")
            address_id, address, address_sig = pick_address(db, account)

    with summary_col:
        with st.container(border=True):
            st.subheader("Order summary")
            total = listing.unit_amount * int(quantity)
            st.text(f"{listing.product} — {listing.name}")
            st.text(f"{int(quantity)} × {display.money(listing.unit_amount, listing.currency)}")
            st.metric("Total", display.money(total, listing.currency))
            place = st.button(
                "Place order",
                type="primary",
                key="checkout_place",
                icon=":material/shopping_cart_checkout:",
                width="stretch",
            )
        if place:
            signature = (listing.code, int(quantity), address_sig)
            with st.spinner("Placing the order…"):
                submit(
                    db,
                    account,
                    [CartItem(listing.code, int(quantity))],
                    token,
                    address_id,
                    address,
                    signature,
                )
    with outcome_slot:
        show_outcome()


# -- the page ----------------------------------------------------------------------------------
def main() -> None:
    st.title("Demo checkout")
    st.caption(
        "Test purchases as a customer would make them, paid with Stripe's test card tokens "
        f"through the {resources.get_gateways().settings.gateway} payment gateway."
    )
    db = resources.get_db()
    customer = st.session_state.get(session.CUSTOMER_KEY)
    if customer is None:
        account_forms(db)
    else:
        account_bar(customer)
        shop(db, customer)


if __name__ == "__main__":
    main()
