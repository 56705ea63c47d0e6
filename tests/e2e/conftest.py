"""Browser fixtures for every test in this folder (defined in tests/e2e/browser.py)."""

from tests.e2e.browser import chromium, console, new_page, page, problems, shots, staff  # noqa: F401
