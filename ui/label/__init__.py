"""Streamlit helpers of the Label page."""
