#!/usr/bin/env bash
# Refresh the README's screenshots (docs/screenshots/*.png) from the real app in headless Chromium.
# The browser test writes into a temporary folder unless M2T_SCREENSHOTS_DIR names one, so an
# ordinary test run never touches these tracked files.
set -euo pipefail
cd "$(dirname "$0")/.."
M2T_SCREENSHOTS_DIR="$PWD/docs/screenshots" .venv/bin/python -m pytest -q tests/test_app_browser.py "$@"
