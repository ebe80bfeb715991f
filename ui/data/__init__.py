"""Streamlit helpers of the Data page."""
