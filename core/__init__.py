"""Media2Tweet core: media + metadata → tweet, usable from the CLI, the app and training (no Streamlit here)."""

__version__ = "0.1.0"
