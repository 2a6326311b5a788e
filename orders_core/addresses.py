"""How a postal address is written, by the country's convention: the page's
shipping card (one line per row) and the export's shipping_address cell (the same
lines joined with ", ") both come from the layouts here.

A layout is lines of groups of fields: the fields of a group are joined with a space,
the groups of a line with ", ", and empty fields, groups and lines are left out. The
US writes "Chicago, IL 60614"; the UK the town, then the postcode on a line of its
own; most of continental Europe "75001 Paris". Countries not listed here get the
default, the US order (city, then region and postal code), which every carrier reads.
Pure: no database, no framework."""

from __future__ import annotations

import dataclasses

Layout = tuple[tuple[tuple[str, ...], ...], ...]

_HEAD: Layout = ((("name",),), (("line1",),), (("line2",),))
_TAIL: Layout = ((("country",),),)

CITY_REGION_POSTAL: Layout = (*_HEAD, (("city",), ("region", "postal_code")), *_TAIL)
CITY_REGION_POSTAL_SPACED: Layout = (*_HEAD, (("city", "region", "postal_code"),), *_TAIL)
TOWN_THEN_POSTCODE: Layout = (*_HEAD, (("city",),), (("region",),), (("postal_code",),), *_TAIL)
POSTAL_CITY: Layout = (*_HEAD, (("postal_code", "city"),), (("region",),), *_TAIL)
DEFAULT_LAYOUT = CITY_REGION_POSTAL

LAYOUTS: dict[str, Layout] = {
    "US": CITY_REGION_POSTAL,
    "CA": CITY_REGION_POSTAL,
    "AU": CITY_REGION_POSTAL_SPACED,
    "GB": TOWN_THEN_POSTCODE,
    "IE": TOWN_THEN_POSTCODE,
    **dict.fromkeys(
        ("AT", "BE", "CH", "DE", "DK", "ES", "FI", "FR", "IT", "LU", "NL", "NO", "PL", "PT", "SE"),
        POSTAL_CITY,
    ),
}
FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country")


@dataclasses.dataclass(frozen=True)
class PostalAddress:
    name: str
    line1: str
    line2: str
    city: str
    region: str
    postal_code: str
    country: str  # ISO 3166 alpha-2, upper case

    def lines(self) -> list[str]:
        return address_lines(self)

    def as_dict(self) -> dict[str, str]:
        return {field: getattr(self, field) for field in FIELDS}


def layout_for(country: str | None) -> Layout:
    return LAYOUTS.get((country or "").strip().upper(), DEFAULT_LAYOUT)


def address_lines(address: PostalAddress) -> list[str]:
    """The address as written on an envelope, one line per item."""
    values = {field: getattr(address, field) or "" for field in FIELDS}  # as stored (cleaned on entry)
    lines = []
    for line in layout_for(address.country):
        groups = [" ".join(values[f] for f in group if values[f]) for group in line]
        text = ", ".join(g for g in groups if g)
        if text:
            lines.append(text)
    return lines


def address_one_line(address: PostalAddress) -> str:
    """The lines joined with ", ", as the export writes them."""
    return ", ".join(address_lines(address))
