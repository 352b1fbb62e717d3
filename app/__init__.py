"""Streamlit helpers shared by the pages (sidebar settings, cached models, widgets, error display).

``core`` never imports Streamlit; everything Streamlit-specific the pages share lives here so
each page file stays a thin layout of calls into ``core``.
"""
