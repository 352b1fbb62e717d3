"""Streamlit pages, one script per page; ``streamlit_app.py`` lists them in its navigation.

A package so that a wheel install ships them (Streamlit runs each file as a script, never imports it).
"""
