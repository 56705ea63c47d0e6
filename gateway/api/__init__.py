"""The staff JSON API (routes.py) and its reference-data endpoints (reference.py)."""
