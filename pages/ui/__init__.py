"""What the pages share, one concern a module. A package, not files in pages/: Streamlit
would serve every *.py directly inside pages/ as a page of its own."""
