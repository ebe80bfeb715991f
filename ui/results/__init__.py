"""Streamlit helpers of the Results page."""
