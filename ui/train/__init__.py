"""Streamlit helpers of the Train page."""
