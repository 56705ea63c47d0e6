"""Sugu gateway: everything with I/O (web, database, aggregators, CLI)."""
