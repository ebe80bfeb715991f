"""Streamlit-only helpers shared by the pages (imports: pages -> ui -> engine)."""
