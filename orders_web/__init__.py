"""The app's own HTTP routes, served beside Streamlit through st.App (app.py): staff
sign-in and sign-out, the page gate, single sign-on hand-over, health checks.

Nothing here decides who may do what: orders_core does (authentication, staff).
This package only carries requests to it and cookies back."""
