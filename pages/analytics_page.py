"""Analytics for the orders matching the filters (the same URL filters as the Orders
page, plus ?days= for the unfulfilled list). The figures come from
orders_core.analytics (DuckDB), cached for a minute per filter set; the charts are
Altair through st.altair_chart; every table can be downloaded as CSV."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from orders_core import analytics
from orders_core.compact_figures import compact_count, compact_money
from orders_core.errors import ValidationError
from orders_core.money import exponent
from orders_core.staff import Actor, Permission
from pages.ui import display, links, orders_view, resources, session, statuses
from pages.ui.filter_form import FilterForm, sync_widget

FILTER_PARAMS = ("status", "from", "to", "q", "sku", "currency", "min", "max", "unfulfilled")
DAYS_PARAM = "days"
CACHE_SECONDS = 60
TILE_WIDTH = 200  # px: "CA$9,999.99", the widest figure a tile shows, fits
FILTERS = FilterForm("analytics", with_status=True, column_widths=(1.4, 2.6, 2.4, 1.4))

K_DAYS = "analytics_days"
K_CURRENCY = "analytics_currency"
K_GRAIN = "analytics_grain"
NOTICES = "analytics_notices"

STATUS_SCALE = alt.Scale(
    domain=[statuses.status_label(s) for s in statuses.STATUS_LOOKS],
    range=[look.chart_color for look in statuses.STATUS_LOOKS.values()],
)


# -- the URL ---------------------------------------------------------------------------------


def url_params() -> dict[str, str]:
    return {k: v for k, v in st.query_params.to_dict().items() if k in FILTER_PARAMS}


def read_days(raw) -> tuple[int, str | None]:
    try:
        return analytics.parse_stale_days(raw), None
    except ValidationError as error:
        return analytics.DEFAULT_STALE_DAYS, f"Ignored days={str(raw)[:40]!r}: {error}"


def write_url(filters_params: dict, days: int) -> None:
    view, notices = orders_view.parse_orders_params({k: v for k, v in filters_params.items() if v})
    params = {k: v for k, v in view.params().items() if k in FILTER_PARAMS}
    if days != analytics.DEFAULT_STALE_DAYS:
        params[DAYS_PARAM] = str(days)
    st.query_params.from_dict(params)
    if notices:
        st.session_state[NOTICES] = notices


def on_filters_submit() -> None:
    submitted = FILTERS.submitted()
    _, errors = orders_view.filter_errors({k: v for k, v in submitted.items() if v})
    if errors:  # refused whole: the typed values stay, each error at its field
        FILTERS.set_errors(errors)
        return
    FILTERS.reset()
    write_url(submitted, read_days(st.query_params.get(DAYS_PARAM))[0])


def on_filters_clear() -> None:
    FILTERS.reset()
    write_url({}, read_days(st.query_params.get(DAYS_PARAM))[0])


def on_days_change() -> None:
    write_url(url_params(), int(st.session_state.get(K_DAYS) or 0))


# -- computing ----------------------------------------------------------------------------------


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False, max_entries=32)
def cached_report(database_url: str, actor: Actor, params: tuple, days: int) -> analytics.AnalyticsReport:
    """The report for one filter set; `database_url` keeps databases apart, `actor`
    keeps people apart (each is authorized by build_report, at least once a minute)."""
    view, _ = orders_view.parse_orders_params(dict(params))
    return analytics.build_report(resources.get_db(), view.filters, actor=actor, stale_days=days)


# -- formatting ---------------------------------------------------------------------------------


def hours_text(hours: float | None) -> str:
    if hours is None:
        return "—"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def percent(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.1%}"


def csv_button(label: str, frame: pd.DataFrame, file_name: str, key: str) -> None:
    if not session.can(Permission.EXPORT):
        return
    data = analytics.report_csv(resources.get_db(), frame, actor=session.current_actor())
    st.download_button(
        label,
        data=data,
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
        on_click="ignore",
        type="tertiary",
    )


def money_tile(column, label: str, amount: int, currency: str, about: str = "") -> None:
    """A short figure ("$214.1k") that fits its tile from 1280 px up; the exact amount
    in its help tooltip."""
    exact = display.money(amount, currency)
    column.metric(
        label,
        compact_money(amount, currency),
        help=f"{exact}" + (f" · {about}" if about else ""),
        width=TILE_WIDTH,
    )


# -- sections -----------------------------------------------------------------------------------


def key_figures(report) -> None:
    st.subheader("Key figures", anchor=False)
    st.caption(
        "Per currency; amounts are never converted. Gross revenue counts every order "
        "that was paid (later refunds included); net revenue subtracts the refunds."
    )
    tiles = report.tiles
    for row in tiles.itertuples(index=False):
        currency = row.currency
        with st.container(border=True, key=f"analytics_tiles_{currency}"):
            st.markdown(f"**{currency.upper()}**")
            # Tiles of a fixed width that wrap onto a second row when the page is narrow:
            # six in a row at 1920 px, two rows at 1280 px; never a figure cut short.
            figures = st.container(horizontal=True, gap="medium", key=f"analytics_tile_row_{currency}")
            figures.metric(
                "Orders",
                compact_count(row.orders),
                help=f"{row.orders:,} orders, {row.paid_orders:,} of them paid",
                width=TILE_WIDTH,
            )
            money_tile(figures, "Gross revenue", int(row.gross), currency)
            money_tile(
                figures, "Refunds", int(row.refunds), currency, f"{row.refunded_orders:,} refunded orders"
            )
            money_tile(figures, "Net revenue", int(row.net), currency)
            figures.metric(
                "Refund rate",
                percent(row.refund_rate),
                help="Refunds as a share of gross revenue",
                width=TILE_WIDTH,
            )
            aov = row.average_order_value
            if pd.isna(aov):
                figures.metric("Avg order value", "—", help="Gross revenue per paid order", width=TILE_WIDTH)
            else:
                money_tile(figures, "Avg order value", round(aov), currency, "Gross revenue per paid order")
    frame = analytics.major_units(tiles, ["gross", "refunds", "net", "average_order_value"])
    csv_button("Key figures CSV", frame, "key-figures.csv", "analytics_csv_tiles")


GRAINS = {"day": ("yearmonthdate", "Day"), "week": ("yearweek", "Week"), "month": ("yearmonth", "Month")}


def per_day(report) -> None:
    head_col, grain_col = st.columns([4, 2], vertical_alignment="bottom")
    head_col.subheader("Over time", anchor=False)
    grain = (
        grain_col.segmented_control(
            "Group by",
            list(GRAINS),
            format_func=lambda g: GRAINS[g][1],
            key=K_GRAIN,
            default="day",
            required=True,
            label_visibility="collapsed",
            width="stretch",
        )
        or "day"
    )
    unit, word = GRAINS[grain]
    daily = report.daily.copy()
    daily["status_label"] = daily["status"].map(statuses.status_label)
    x = alt.X(f"{unit}(day):T", title=f"{word} (UTC)")
    bar = alt.RelativeBandSize(0.85)
    orders_col, revenue_col = st.columns(2, gap="large")
    with orders_col:
        st.markdown(f"**Orders per {word.lower()}, by status**")
        chart = (
            alt.Chart(daily)
            .mark_bar(width=bar)
            .encode(
                x=x,
                y=alt.Y(
                    "sum(orders):Q", title="Orders", stack="zero", axis=alt.Axis(format="d", tickMinStep=1)
                ),
                color=alt.Color("status_label:N", title="Status", scale=STATUS_SCALE),
                order=alt.Order("status_label:N"),
                tooltip=[
                    alt.Tooltip(f"{unit}(day):T", title=word),
                    alt.Tooltip("status_label:N", title="Status"),
                    alt.Tooltip("sum(orders):Q", title="Orders", format=","),
                ],
            )
        )
        st.altair_chart(chart, width="stretch", key="analytics_chart_orders")
    with revenue_col:
        currencies = list(report.tiles["currency"])
        title_col, pick_col = st.columns([3, 2], vertical_alignment="center")
        title_col.markdown(f"**Gross revenue per {word.lower()}, by status now**")
        if st.session_state.get(K_CURRENCY) not in currencies:
            st.session_state[K_CURRENCY] = currencies[0]
        currency = pick_col.selectbox(
            "Currency", currencies, key=K_CURRENCY, format_func=str.upper, label_visibility="collapsed"
        )
        money = daily[(daily["currency"] == currency) & (daily["revenue"] > 0)].copy()
        money["amount"] = money["revenue"] / (10 ** exponent(currency))
        chart = (
            alt.Chart(money)
            .mark_bar(width=bar)
            .encode(
                x=x,
                y=alt.Y("sum(amount):Q", title=f"Gross revenue ({currency.upper()})", stack="zero"),
                color=alt.Color("status_label:N", title="Status now", scale=STATUS_SCALE),
                order=alt.Order("status_label:N"),
                tooltip=[
                    alt.Tooltip(f"{unit}(day):T", title=word),
                    alt.Tooltip("status_label:N", title="Status now"),
                    alt.Tooltip(
                        "sum(amount):Q",
                        title=f"Revenue ({currency.upper()})",
                        format=",.2f" if exponent(currency) else ",.0f",
                    ),
                    alt.Tooltip("sum(orders):Q", title="Orders", format=","),
                ],
            )
        )
        st.altair_chart(chart, width="stretch", key="analytics_chart_revenue")
    frame = analytics.major_units(report.daily, ["revenue"])
    frame["day"] = frame["day"].dt.strftime("%Y-%m-%d")
    csv_button("Per-day CSV", frame, "per-day.csv", "analytics_csv_daily")


def funnel(report) -> None:
    st.subheader("Status funnel", anchor=False)
    chart_col, table_col = st.columns([3, 2], gap="large")
    with chart_col:
        data = report.funnel.copy()
        data["label"] = [f"{n:,} · {s:.0%}" for n, s in zip(data["orders"], data["share_of_placed"])]
        bars = (
            alt.Chart(data)
            .mark_bar(color="#4e79a7", cornerRadiusEnd=3)
            .encode(
                y=alt.Y("stage:N", sort=list(analytics.FUNNEL_STAGES), title=None),
                x=alt.X("orders:Q", title="Orders"),
                tooltip=[
                    alt.Tooltip("stage:N", title="Stage"),
                    alt.Tooltip("orders:Q", title="Orders", format=","),
                    alt.Tooltip("share_of_placed:Q", title="Of placed", format=".1%"),
                    alt.Tooltip("share_of_previous:Q", title="Of previous stage", format=".1%"),
                ],
            )
        )
        text = bars.mark_text(align="left", dx=4).encode(text="label:N")
        st.altair_chart(bars + text, width="stretch", key="analytics_chart_funnel")
        st.caption("Placed → paid → fulfilled → kept (fulfilled and not returned).")
    with table_col:
        st.markdown("**Orders by status now**")
        by_status = report.statuses.copy()
        shown = pd.DataFrame(
            {
                "Status": by_status["status"].map(statuses.status_label),
                "Orders": by_status["orders"],
                "Share": [percent(v) for v in by_status["share"]],
            }
        )
        st.dataframe(shown, hide_index=True, width="stretch", key="analytics_statuses")
    both = report.funnel.copy()
    csv_button("Funnel CSV", both, "funnel.csv", "analytics_csv_funnel")


def top_skus(report) -> None:
    st.subheader("Top SKUs", anchor=False)
    st.caption("By units ordered; revenue counts paid orders only.")
    top = report.top_skus
    if top.empty:
        st.caption("No items.")
        return
    shown = pd.DataFrame(
        {
            "SKU": top["sku"],
            "Product": top["product"],
            "Option": top["name"],
            "Units": top["units"],
            "Orders": top["orders"],
            "Revenue": [display.money(int(a), c) for a, c in zip(top["revenue"], top["currency"])],
        }
    )
    st.dataframe(shown, hide_index=True, width="stretch", key="analytics_top_skus")
    csv_button(
        "Top SKUs CSV", analytics.major_units(top, ["revenue"]), "top-skus.csv", "analytics_csv_top_skus"
    )


def fulfilment(report, days: int) -> None:
    st.subheader("Fulfilment", anchor=False)
    times = report.fulfillment
    cols = st.columns(4)
    cols[0].metric(
        "Median time, paid → fulfilled",
        hours_text(times.median_hours),
        help=f"Over {times.orders:,} fulfilled orders",
    )
    cols[1].metric("90th percentile", hours_text(times.p90_hours))
    cols[2].metric(f"Paid, not fulfilled after {days} days", f"{report.unfulfilled_total:,}")
    with cols[3]:
        sync_widget(K_DAYS, days)
        st.number_input(
            "Days since payment",
            min_value=0,
            max_value=analytics.MAX_STALE_DAYS,
            step=1,
            key=K_DAYS,
            on_change=on_days_change,
            help="Lists paid orders still not fulfilled this many days after payment.",
        )
    stale = report.unfulfilled
    if stale.empty:
        st.caption(f"No paid order has waited {days} days or more for fulfilment.")
        return
    if report.unfulfilled_total > len(stale):
        st.caption(f"The {len(stale):,} longest-waiting of {report.unfulfilled_total:,} orders.")
    shown = pd.DataFrame(
        {
            "Order": stale["number"],
            "Customer": stale["customer_name"],
            "Email": stale["customer_email"],
            "Total": [display.money(int(a), c) for a, c in zip(stale["total_amount"], stale["currency"])],
            "Paid at (UTC)": pd.to_datetime(stale["paid_at"]).dt.strftime("%Y-%m-%d %H:%M"),
            "Days waiting": stale["days_waiting"],
        }
    )
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        key="analytics_unfulfilled",
        column_config={"Days waiting": st.column_config.NumberColumn(format="%.1f")},
    )
    frame = analytics.major_units(stale, ["total_amount"])
    csv_button(
        "Unfulfilled orders CSV", frame, f"paid-not-fulfilled-{days}-days.csv", "analytics_csv_unfulfilled"
    )


# -- the page -----------------------------------------------------------------------------------


def main() -> None:
    actor = session.current_actor()
    db = resources.get_db()
    raw = url_params()
    view, notices = orders_view.parse_orders_params(raw)
    days, days_notice = read_days(st.query_params.get(DAYS_PARAM))
    canonical = {k: v for k, v in view.params().items() if k in FILTER_PARAMS}
    if days != analytics.DEFAULT_STALE_DAYS:
        canonical[DAYS_PARAM] = str(days)
    current = {k: v for k, v in st.query_params.to_dict().items() if k in FILTER_PARAMS or k == DAYS_PARAM}
    if current != canonical:  # show the URL of what is actually on screen
        st.query_params.from_dict(canonical)
    notices = st.session_state.pop(NOTICES, []) + notices + ([days_notice] if days_notice else [])

    st.title("Analytics")
    if notices:
        st.warning(
            "Some parts of the link could not be used, so their defaults are shown:  \n"
            + "  \n".join("• " + display.escape_markdown(n) for n in notices),
            icon=":material/link_off:",
        )
    FILTERS.show(db, view.filters, on_apply=on_filters_submit, on_clear=on_filters_clear)

    params = tuple(sorted(canonical.items()))
    with st.spinner("Crunching the numbers…"):
        report = cached_report(db.url, actor, tuple((k, v) for k, v in params if k != DAYS_PARAM), days)
    info_col, link_col, refresh_col = st.columns([6, 2, 1.2], vertical_alignment="center")
    matching = "match these filters" if any(k != DAYS_PARAM for k in canonical) else "in all"
    info_col.caption(
        f"{report.orders:,} orders {matching} · computed "
        f"{report.generated_at:%H:%M:%S} UTC (kept for {CACHE_SECONDS} s; "
        f"Refresh recomputes)"
    )
    link_col.page_link(
        links.ORDERS_PAGE,
        label="Open these orders",
        icon=":material/receipt_long:",
        query_params={k: v for k, v in canonical.items() if k != DAYS_PARAM},
    )
    if refresh_col.button("Refresh", key="analytics_refresh", icon=":material/refresh:"):
        cached_report.clear()
        st.rerun()

    if report.empty:
        st.info(
            "No orders match these filters yet. Orders appear here as soon as customers "
            "buy (try the Demo checkout page), or clear the filters.",
            icon=":material/query_stats:",
        )
        return
    key_figures(report)
    per_day(report)
    funnel(report)
    top_skus(report)
    fulfilment(report, days)


if __name__ == "__main__":
    main()
