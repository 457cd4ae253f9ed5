"""Streamlit UI helpers: state and caching (state.py), charts (charts.py). Pages live in pages/."""
