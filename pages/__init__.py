"""Thin Streamlit pages over orders_core: they show, ask and call; every rule lives in orders_core."""
