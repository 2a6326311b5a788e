"""The process-wide resources: one per server process (st.cache_resource), not one per
browser session."""

from __future__ import annotations

import streamlit as st

from orders_core.db import Database, open_database
from orders_core.payments import Gateways


@st.cache_resource(show_spinner=False)
def get_db() -> Database:
    return open_database()


@st.cache_resource(show_spinner=False)
def get_gateways() -> Gateways:
    return Gateways(get_db())
