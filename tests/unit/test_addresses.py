"""Addresses are written by the country's convention."""

from orders_core.addresses import PostalAddress, address_lines, address_one_line


def _address(country, *, city="Chicago", region="IL", postal_code="60614", line2=""):
    return PostalAddress("Ada Lovelace", "1 Main St", line2, city, region, postal_code, country)


def test_a_us_address_writes_city_comma_state_and_zip_on_one_line():
    assert address_lines(_address("US")) == ["Ada Lovelace", "1 Main St", "Chicago, IL 60614", "US"]


def test_a_uk_address_writes_the_town_then_the_postcode_on_its_own_line():
    uk = _address("GB", city="London", region="", postal_code="SW1Y 4JH")
    assert address_lines(uk) == ["Ada Lovelace", "1 Main St", "London", "SW1Y 4JH", "GB"]


def test_a_french_address_writes_the_postal_code_before_the_city():
    fr = _address("FR", city="Paris", region="", postal_code="75001", line2="Bât. B")
    assert address_lines(fr) == ["Ada Lovelace", "1 Main St", "Bât. B", "75001 Paris", "FR"]


def test_an_australian_address_writes_suburb_state_and_postcode_without_commas():
    au = _address("AU", city="Sydney", region="NSW", postal_code="2000")
    assert address_lines(au)[2] == "Sydney NSW 2000"


def test_an_unlisted_country_gets_the_default_city_then_region_and_postal_code():
    assert address_lines(_address("BR", city="Recife", region="PE", postal_code="50000-000"))[2] == (
        "Recife, PE 50000-000"
    )


def test_empty_parts_leave_no_stray_separators():
    assert address_lines(_address("US", region=""))[2] == "Chicago, 60614"
    assert address_lines(_address("US", region="", postal_code=""))[2] == "Chicago"


def test_the_one_line_form_joins_the_lines_with_commas():
    assert address_one_line(_address("US")) == "Ada Lovelace, 1 Main St, Chicago, IL 60614, US"
