"""Serving the app: the Streamlit server process and the optional ngrok tunnel."""
