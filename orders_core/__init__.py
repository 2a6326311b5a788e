"""Orders Desk's domain package: the rules, the storage and the services.

Pages, the CLI and the worker all call into this package, so every rule is
enforced here and nowhere else. It never imports streamlit.
"""
