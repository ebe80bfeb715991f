"""Streamlit helpers of the Compare page."""
