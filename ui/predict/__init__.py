"""Streamlit helpers of the Predict page."""
