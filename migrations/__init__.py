"""Alembic's chain of migrations for the gateway's schema (see versions/)."""

# The newest revision of the chain: what a database must be at for the server to be ready
# (/readyz). Written here so that the server needs no Alembic at run time (importing it costs a
# process ~10 MB resident); tests/test_migrations.py checks that it is Alembic's head.
HEAD = "0015"
