"""Where a sign-in may send a person next: same-site paths only (orders_web.paths)."""

from __future__ import annotations

import pytest

from orders_web.paths import is_public_page, is_staff_page, safe_next, sign_in_url


@pytest.mark.parametrize(
    "wanted",
    [
        "/",
        "/order?number=ORD-000123",
        "/?status=paid&q=a%20b",
        "/jobs?job=7",
        "/analytics?status=fulfilled&sku=BOX-USD",
    ],
)
def test_a_page_of_this_site_is_kept_with_its_query(wanted):
    assert safe_next(wanted) == wanted


@pytest.mark.parametrize(
    "hostile",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/orders\r\nSet-Cookie: x=1",
        "/\x00",
        "",
        None,
        "/" + "a" * 3000,
        "/sign-in?next=/",
        "/sign-out",
        "/auth/login?provider=x",
        "/oauth2callback?code=1",
        "/_stcore/health",
        "/webhooks/stripe",
        "http:/evil.example",
    ],
)
def test_anything_else_goes_to_the_front_page(hostile):
    assert safe_next(hostile) == "/"


def test_the_sign_in_url_carries_the_page_encoded():
    assert sign_in_url("/order?number=ORD-000001") == "/sign-in?next=%2Forder%3Fnumber%3DORD-000001"
    assert sign_in_url("//evil.example") == "/sign-in"


def test_staff_pages_need_a_session_and_the_checkout_does_not():
    assert all(is_staff_page(p) for p in ("/", "/orders", "/order", "/jobs/", "/staff", "/account"))
    assert is_public_page("/checkout") and not is_staff_page("/checkout")
    assert not is_staff_page("/_stcore/health") and not is_staff_page("/static/app.js")
