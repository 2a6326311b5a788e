"""Orders Desk's server: Streamlit's Starlette integration (st.App) serving the
dashboard (streamlit_app.py) with the app's own HTTP routes and page gate beside it.

    streamlit run app.py          (what scripts/run-app.sh does)

`streamlit run` finds the `app` below and serves it with uvicorn; every page and
Streamlit's own routes work as under `streamlit run streamlit_app.py`, plus
/sign-in, /sign-out, /sign-in/sso, /healthz and /readyz (orders_web/)."""

from __future__ import annotations

import contextlib

import streamlit as st
from starlette.middleware import Middleware
from streamlit.runtime.pages_manager import PagesManager

from orders_web.gate import PageGate
from orders_web.routes import routes

# pages/ holds the scripts streamlit_app.py's st.navigation lists. Without this, the
# first run in each server process would be Streamlit's old pages-folder mode, which
# runs a file from pages/ on its own (no frame, no sign-in check) or answers a page
# URL it does not know (/order) with "Page not found".
PagesManager.uses_pages_directory = False


@contextlib.asynccontextmanager
async def lifespan(_app):
    """One embedded job worker process per server process, from start-up (not first
    visit), watched and restarted by this one and stopped with it (job_engine/embedded.py)."""
    from orders_core.job_engine import ensure_embedded_worker, stop_embedded_worker
    from orders_web.resources import database

    ensure_embedded_worker(database().url)
    try:
        yield None
    finally:
        stop_embedded_worker()


app = st.App("streamlit_app.py", routes=routes(), middleware=[Middleware(PageGate)], lifespan=lifespan)
