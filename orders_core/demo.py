"""Demo data: a small catalog, customers, staff accounts, and seeding of orders.

`seed(db, orders=N)` ensures the catalog, customers and staff, then appends N orders
in every status through demo_orders.py's bulk loader (whose docstring says what
the seeded orders look like).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time

from sqlalchemy import insert, select

from .chunking import chunks
from .clock import utcnow
from .db import Database
from .demo_orders import STATUSES, SeedReport, SeedStaff, append_orders
from .passwords import LOCKED, hash_password
from .schema import addresses, customers, products, skus
from .staff import Role, ensure_staff

DEMO_PASSWORD = "demo-password"
DEMO_CUSTOMER_EMAIL = "customer@ordersdesk.test"
DEMO_CUSTOMER_NAME = "Demo Customer"

DEMO_STAFF = (
    ("admin@ordersdesk.test", "Alex Rivera", Role.ADMIN),
    ("ops@ordersdesk.test", "Priya Shah", Role.OPS),
    ("support@ordersdesk.test", "Sam Okafor", Role.SUPPORT),
    ("analyst@ordersdesk.test", "Mia Chen", Role.ANALYST),
)
_SEED_STAFF = SeedStaff(*(s[0] for s in DEMO_STAFF[:3]))  # admin, ops, support

# -- catalog ----------------------------------------------------------------------------
# (product name, description, shippable, [(code, sku name, unit amount, currency, active)])
DEMO_CATALOG = (
    (
        "Print subscription box",
        "A curated box of prints, stickers and zines, posted to your door.",
        True,
        [
            ("BOX-MONTHLY-USD", "Monthly box", 2900, "usd", True),
            ("BOX-QUARTERLY-USD", "Quarterly box (3 months)", 7900, "usd", True),
            ("BOX-MONTHLY-EUR", "Monthly box", 2700, "eur", True),
            ("BOX-MONTHLY-GBP", "Monthly box", 2400, "gbp", True),
        ],
    ),
    (
        "Coffee sampler box",
        "Four single-origin coffees, 100 g each, roasted to order.",
        True,
        [
            ("COFFEE-SAMPLER-USD", "Coffee sampler (4 × 100 g)", 1999, "usd", True),
            ("COFFEE-SAMPLER-JPY", "Coffee sampler (4 × 100 g)", 2800, "jpy", True),
        ],
    ),
    (
        "Canvas tote bag",
        "Heavy cotton tote with the Orders Desk print.",
        True,
        [("TOTE-USD", "Canvas tote", 1500, "usd", True), ("TOTE-GBP", "Canvas tote", 1200, "gbp", True)],
    ),
    (
        "Enamel mug",
        "A 350 ml enamel camping mug. No longer sold.",
        True,
        [("RETIRED-MUG", "Enamel mug", 1400, "usd", False)],
    ),
    (
        "Digital day pass",
        "24 hours of access to the online archive.",
        False,
        [
            ("PASS-DAY-USD", "Day pass", 999, "usd", True),
            ("PASS-DAY-EUR", "Day pass", 900, "eur", True),
            ("PASS-DAY-JPY", "Day pass", 1200, "jpy", True),
        ],
    ),
    (
        "Annual digital pass",
        "A year of access to the online archive and new issues.",
        False,
        [("PASS-ANNUAL-USD", "Annual pass", 9900, "usd", True)],
    ),
    (
        "E-book bundle",
        "Five illustrated e-books (EPUB and PDF).",
        False,
        [
            ("EBOOK-BUNDLE-EUR", "E-book bundle (5 titles)", 2299, "eur", True),
            ("EBOOK-BUNDLE-GBP", "E-book bundle (5 titles)", 1999, "gbp", True),
        ],
    ),
)


def ensure_demo_catalog(db: Database) -> None:
    """Create the demo products and SKUs that are missing (by product name / SKU code)."""
    with db.write() as conn:
        product_ids = {name: pid for pid, name in conn.execute(select(products.c.id, products.c.name))}
        codes = set(conn.execute(select(skus.c.code)).scalars())
        for name, description, shippable, sku_specs in DEMO_CATALOG:
            if all(code in codes for code, *_ in sku_specs):
                continue
            product_id = product_ids.get(name)
            if product_id is None:
                product_id = conn.execute(
                    insert(products).values(
                        name=name,
                        description=description,
                        shippable=shippable,
                        active=True,
                    )
                ).inserted_primary_key[0]
                product_ids[name] = product_id
            for code, sku_name, unit_amount, currency, active in sku_specs:
                if code not in codes:
                    conn.execute(
                        insert(skus).values(
                            code=code,
                            name=sku_name,
                            product_id=product_id,
                            unit_amount=unit_amount,
                            currency=currency,
                            active=active,
                        )
                    )
                    codes.add(code)


# -- customers --------------------------------------------------------------------------
_FIRST = (
    ("Zoë", "zoe"),
    ("José", "jose"),
    ("Amelia", "amelia"),
    ("Noah", "noah"),
    ("Olivia", "olivia"),
    ("Liam", "liam"),
    ("Sofía", "sofia"),
    ("Mateo", "mateo"),
    ("Chloé", "chloe"),
    ("Lukas", "lukas"),
    ("Aoife", "aoife"),
    ("Siobhán", "siobhan"),
    ("Søren", "soren"),
    ("Björn", "bjorn"),
    ("Ingrid", "ingrid"),
    ("Priya", "priya"),
    ("Arjun", "arjun"),
    ("Yūki", "yuki"),
    ("Hiroshi", "hiroshi"),
    ("Mei", "mei"),
    ("Wei", "wei"),
    ("Fatima", "fatima"),
    ("Omar", "omar"),
    ("Chidi", "chidi"),
    ("Ngozi", "ngozi"),
    ("Emma", "emma"),
    ("James", "james"),
    ("Grace", "grace"),
    ("Łukasz", "lukasz"),
    ("Zsófia", "zsofia"),
    ("François", "francois"),
    ("Anaïs", "anais"),
    ("Mário", "mario"),
    ("Kateřina", "katerina"),
    ("Ana", "ana"),
    ("Dmitri", "dmitri"),
    ("Leilani", "leilani"),
    ("Seán", "sean"),
    ("Maya", "maya"),
    ("Ethan", "ethan"),
)
_LAST = (
    ("Ødegård", "odegard"),
    ("Núñez", "nunez"),
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("García", "garcia"),
    ("Müller", "muller"),
    ("Dubois", "dubois"),
    ("Rossi", "rossi"),
    ("Nguyễn", "nguyen"),
    ("Tanaka", "tanaka"),
    ("Sato", "sato"),
    ("Kim", "kim"),
    ("Patel", "patel"),
    ("Singh", "singh"),
    ("O'Connor", "oconnor"),
    ("MacDonald", "macdonald"),
    ("van der Berg", "vanderberg"),
    ("Kowalski", "kowalski"),
    ("Novák", "novak"),
    ("Dvořák", "dvorak"),
    ("Andersson", "andersson"),
    ("Hansen", "hansen"),
    ("Okafor", "okafor"),
    ("Adeyemi", "adeyemi"),
    ("Haddad", "haddad"),
    ("Cohen", "cohen"),
    ("Silva", "silva"),
    ("Fernández", "fernandez"),
    ("Ivanova", "ivanova"),
    ("Chen", "chen"),
    ("Wang", "wang"),
    ("Brown", "brown"),
    ("Taylor", "taylor"),
    ("Wilson", "wilson"),
    ("Lefèvre", "lefevre"),
    ("Schröder", "schroder"),
    ("Björklund", "bjorklund"),
    ("da Costa", "dacosta"),
    ("Ó Briain", "obriain"),
    ("Al-Sayed", "alsayed"),
)
# The first generated customers are fixed, awkward on purpose (exports, search, HTML).
_FIXED_NAMES = (
    ("Zoë Ødegård", "zoe.odegard"),
    ("José Núñez", "jose.nunez"),
    ('O\'Brien, "Pat"', "pat.obrien"),
)
_DOMAINS = ("example.com", "example.net", "example.org", "mail.example")

# country -> [(city, region, postal code)], [streets]
_PLACES: dict[str, tuple[list[tuple[str, str, str]], list[str]]] = {
    "US": (
        [
            ("Portland", "OR", "97205"),
            ("Austin", "TX", "78701"),
            ("Brooklyn", "NY", "11201"),
            ("Chicago", "IL", "60614"),
            ("Denver", "CO", "80202"),
        ],
        ["Main Street", "Elm Avenue", "Oak Street", "Maple Drive", "Sunset Boulevard"],
    ),
    "GB": (
        [
            ("London", "", "SW1A 1AA"),
            ("Manchester", "", "M1 1AE"),
            ("Edinburgh", "", "EH1 1YZ"),
            ("Bristol", "", "BS1 4DJ"),
        ],
        ["Baker Street", "High Street", "Church Lane", "Victoria Road"],
    ),
    "DE": (
        [("Berlin", "", "10115"), ("München", "Bayern", "80331"), ("Köln", "", "50667")],
        ["Torstraße", "Hauptstraße", "Schillerstraße", "Gartenweg"],
    ),
    "FR": (
        [("Paris", "", "75011"), ("Lyon", "", "69002"), ("Marseille", "", "13001")],
        ["rue de Rivoli", "avenue Jean Jaurès", "rue de la République"],
    ),
    "JP": (
        [("Tokyo", "Tokyo", "150-0001"), ("Osaka", "Osaka", "530-0001"), ("Kyoto", "Kyoto", "600-8216")],
        ["Jingumae", "Umeda", "Shijō-dōri"],
    ),
    "CA": (
        [("Toronto", "ON", "M5V 2T6"), ("Montréal", "QC", "H2X 1Y4"), ("Vancouver", "BC", "V6B 1A1")],
        ["Queen Street West", "rue Saint-Denis", "Granville Street"],
    ),
    "AU": (
        [("Sydney", "NSW", "2000"), ("Melbourne", "VIC", "3000")],
        ["George Street", "Collins Street", "King Street"],
    ),
    "NO": ([("Oslo", "", "0150"), ("Bergen", "", "5003")], ["Karl Johans gate", "Bryggen"]),
    "ES": ([("Madrid", "", "28013"), ("Barcelona", "", "08002")], ["Calle Mayor", "Carrer de Balmes"]),
    "IE": ([("Dublin", "", "D02 X285"), ("Cork", "", "T12 RW26")], ["Grafton Street", "Patrick Street"]),
    "NL": ([("Amsterdam", "", "1012 JS"), ("Utrecht", "", "3511 LX")], ["Prinsengracht", "Oudegracht"]),
    "SE": ([("Göteborg", "", "411 05"), ("Stockholm", "", "111 52")], ["Kungsgatan", "Drottninggatan"]),
}
_COUNTRY_WEIGHTS = (
    ("US", 30),
    ("GB", 14),
    ("DE", 10),
    ("FR", 8),
    ("JP", 8),
    ("CA", 7),
    ("AU", 5),
    ("NO", 3),
    ("ES", 5),
    ("IE", 3),
    ("NL", 4),
    ("SE", 3),
)
_COUNTRY_TABLE = [c for c, w in _COUNTRY_WEIGHTS for _ in range(w)]
_LINE2 = ("Apt 4B", "Suite 200", "Flat 3", "2nd floor", "Unit 12", "c/o Reception")


def _generated_address(rng: random.Random, name: str) -> dict[str, str]:
    country = rng.choice(_COUNTRY_TABLE)
    places, streets = _PLACES[country]
    city, region, postal_code = rng.choice(places)
    return {
        "name": name,
        "line1": f"{rng.randint(1, 250)} {rng.choice(streets)}",
        "line2": rng.choice(_LINE2) if rng.random() < 0.3 else "",
        "city": city,
        "region": region,
        "postal_code": postal_code,
        "country": country,
    }


def _generated_customer(random_seed: int, index: int) -> tuple[str, str, list[dict[str, str]]]:
    """(email, name, addresses) of generated customer `index`: depends on nothing else,
    so asking for more customers later keeps the first ones as they were."""
    rng = random.Random(f"orders-desk-demo-customer:{random_seed}:{index}")
    if index < len(_FIXED_NAMES):
        name, local = _FIXED_NAMES[index]
    else:
        (first, first_slug), (last, last_slug) = rng.choice(_FIRST), rng.choice(_LAST)
        name = f"{first} {last}"
        local = rng.choice(
            (
                f"{first_slug}.{last_slug}",
                f"{first_slug[0]}{last_slug}",
                f"{first_slug}_{last_slug}",
                f"{first_slug}{last_slug[0]}",
            )
        )
        if rng.random() < 0.1:
            local = local.capitalize()  # email keeps its case; email_key is lower case
    email = f"{local}{index + 1}@{rng.choice(_DOMAINS)}"
    count = rng.choice((0, 1, 1, 1, 1, 1, 2, 2, 2, 0))
    saved = [_generated_address(rng, name)]
    if count == 2:
        gift = rng.choice(_FIRST)[0] + " " + rng.choice(_LAST)[0] if rng.random() < 0.5 else name
        saved.append(_generated_address(rng, gift))
    return email, name, saved[:count]


def ensure_demo_customers(
    db: Database, count: int = 200, random_seed: int = 7, *, now: dt.datetime | None = None
) -> None:
    """The demo customer (customer@ordersdesk.test / demo-password, one saved address)
    and `count` generated customers who cannot sign in; creates only what is missing."""
    now = (now or utcnow()).replace(microsecond=0)
    with db.read() as conn:
        demo_exists = (
            conn.execute(select(customers.c.id).where(customers.c.email_key == DEMO_CUSTOMER_EMAIL)).first()
            is not None
        )
    # Hashing takes a moment: do it outside the write transaction.
    demo_hash = None if demo_exists else hash_password(DEMO_PASSWORD)

    generated = [_generated_customer(random_seed, i) for i in range(max(0, int(count)))]
    with db.write() as conn:
        wanted: list[tuple[str, str, str, list[dict[str, str]], dt.datetime]] = []
        if (
            demo_hash is not None
            and conn.execute(
                select(customers.c.id).where(customers.c.email_key == DEMO_CUSTOMER_EMAIL)
            ).first()
            is None
        ):
            wanted.append(
                (
                    DEMO_CUSTOMER_EMAIL,
                    DEMO_CUSTOMER_NAME,
                    demo_hash,
                    [
                        {
                            "name": DEMO_CUSTOMER_NAME,
                            "line1": "1 Market Street",
                            "line2": "Suite 200",
                            "city": "San Francisco",
                            "region": "CA",
                            "postal_code": "94105",
                            "country": "US",
                        }
                    ],
                    now - dt.timedelta(days=400),
                )
            )
        keys = [email.lower() for email, _, _ in generated]
        existing: set[str] = set()
        for chunk in chunks(keys, 500):
            existing.update(
                conn.execute(select(customers.c.email_key).where(customers.c.email_key.in_(chunk))).scalars()
            )
        for index, (email, name, saved) in enumerate(generated):
            if email.lower() not in existing:
                joined = now - dt.timedelta(days=185, seconds=(index * 7919) % (200 * 86400))
                wanted.append((email, name, LOCKED, saved, joined))
        if not wanted:
            return
        conn.execute(
            insert(customers),
            [
                {
                    "email": email,
                    "email_key": email.lower(),
                    "name": name,
                    "password_hash": pw,
                    "created_at": joined,
                }
                for email, name, pw, _, joined in wanted
            ],
        )
        new_keys = [email.lower() for email, *_ in wanted]
        ids: dict[str, int] = {}
        for chunk in chunks(new_keys, 500):
            ids.update(
                conn.execute(
                    select(customers.c.email_key, customers.c.id).where(customers.c.email_key.in_(chunk))
                ).all()
            )
        address_rows = [
            dict(a, customer_id=ids[email.lower()], created_at=joined)
            for email, _, _, saved, joined in wanted
            for a in saved
        ]
        if address_rows:
            conn.execute(insert(addresses), address_rows)


def ensure_demo_staff(db: Database) -> None:
    """admin@, ops@, support@ and analyst@ordersdesk.test, password demo-password."""
    for email, name, role in DEMO_STAFF:
        ensure_staff(db, email=email, name=name, role=role.value, password=DEMO_PASSWORD)


# -- orders -----------------------------------------------------------------------------
def seed(
    db: Database, *, orders: int = 2000, random_seed: int = 1, now: dt.datetime | None = None
) -> SeedReport:
    """Ensure the demo catalog, customers and staff, then append `orders` orders."""
    started = time.perf_counter()
    now = now or utcnow()
    if now.tzinfo is not None:
        now = now.astimezone(dt.UTC).replace(tzinfo=None)
    ensure_demo_catalog(db)
    ensure_demo_customers(db, now=now)
    ensure_demo_staff(db)
    total = max(0, int(orders))
    report = append_orders(
        db,
        total,
        random_seed=random_seed,
        now=now,
        staff=_SEED_STAFF,
        fallback_address=_made_up_shipping_address,
    )
    return dataclasses.replace(report, elapsed_seconds=round(time.perf_counter() - started, 3))


def _made_up_shipping_address(customer_id: int, name: str) -> tuple[str, ...]:
    """Where a customer with no saved address ships to: the same made-up one every time."""
    a = _generated_address(random.Random(f"orders-desk-demo-ship:{customer_id}"), name)
    return (a["name"], a["line1"], a["line2"], a["city"], a["region"], a["postal_code"], a["country"])


__all__ = [
    "ensure_demo_catalog",
    "ensure_demo_customers",
    "ensure_demo_staff",
    "seed",
    "SeedReport",
    "STATUSES",
    "DEMO_PASSWORD",
    "DEMO_CUSTOMER_EMAIL",
    "DEMO_STAFF",
    "DEMO_CATALOG",
]
