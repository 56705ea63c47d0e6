"""What the server process loads: only what serving needs (issue 17: lean processes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine

import migrations
from gateway.core import migrate


def test_the_recorded_head_is_alembics_head(tmp_path):
    assert migrate.heads(f"sqlite:///{tmp_path / 'x.db'}") == {migrations.HEAD}


def test_a_database_never_migrated_is_not_current(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert migrate.is_current(engine) is False
    finally:
        engine.dispose()


# Heavy libraries the server must not load until a request needs them: (module, why it is left out)
LEFT_OUT = [
    pytest.param("av", id="pyav: FFmpeg's libraries, only for uploads and the bulletin MP3"),
    pytest.param("alembic", id="alembic: the server only reads the schema version"),
    pytest.param("httpx", id="httpx: with its command line ~6 MB, only to place a call or send through Orange"),
    pytest.param("requests", id="requests: only the Africa's Talking SDK uses it, at the first send"),
]


@pytest.mark.parametrize("module", LEFT_OUT)
def test_the_server_does_not_load(module):
    code = (
        "import sys; from gateway.app import create_app; from gateway.core.settings import Settings; "
        f"create_app(Settings(database_url='sqlite://', dev_mode=True)); print({module!r} in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


# What an idle `gateway worker` must not load: (module, why)
WORKER_LEAVES_OUT = [
    pytest.param("fastapi", id="fastapi: the worker serves no request"),
    pytest.param("requests", id="requests: only the Africa's Talking SDK uses it, at the first send"),
    pytest.param("africastalking", id="africastalking: the SDK is imported at the first send"),
]


@pytest.mark.parametrize("module", WORKER_LEAVES_OUT)
def test_an_idle_worker_does_not_load(module, tmp_path):
    # What `gateway worker` builds before its first cycle (gateway/cli.py: worker).
    code = (
        "import sys; import gateway.cli, gateway.worker; from gateway.core.settings import Settings; "
        "from gateway.outbound.senders import build_sender, build_caller; "
        f"s = Settings(database_url='sqlite:///{tmp_path / 'w.db'}', dev_mode=True); "
        "build_sender(s); build_caller(s); "
        f"print({module!r} in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_the_sms_sdk_made_at_the_first_send_is_one_for_every_thread():
    from concurrent.futures import ThreadPoolExecutor

    from gateway.aggregators.africastalking import AfricasTalkingSender

    sender = AfricasTalkingSender(username="sandbox", api_key="k", base_url="http://127.0.0.1:9")
    try:
        with ThreadPoolExecutor(8) as pool:
            made = set(pool.map(lambda _: id(sender._client()), range(64)))
        assert len(made) == 1
    finally:
        sender.close()


def test_a_serving_process_stalls_hops_for_full_collections_rarely(tmp_path):
    """A serving process (app_factory) freezes what start-up built and collects garbage ten times
    less often than Python's default: a full collection walks everything requests keep alive
    (remembered sessions, cached content) and stalled every hop in flight for 40-100 ms every
    few thousand hops. A process built by create_app (tests, tools) keeps Python's defaults."""
    code = (
        "import asyncio, gc, os; from gateway.app import app_factory, create_app, GC_THRESHOLDS; "
        "from gateway.core.settings import Settings; "
        "tool = create_app(Settings(database_url=os.environ['GATEWAY_DATABASE_URL'], dev_mode=True)); "
        "assert gc.get_threshold() == (700, 10, 10), gc.get_threshold(); "
        "app = app_factory()\n"
        "async def main():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        print(gc.get_threshold() == GC_THRESHOLDS, GC_THRESHOLDS[0] >= 7000, gc.get_freeze_count() > 10000)\n"
        "asyncio.run(main())"
    )
    env = {**os.environ, "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}", "GATEWAY_DEV_MODE": "true",
           "GATEWAY_WORKER_IN_PROCESS": "false", "GATEWAY_LOG_LEVEL": "WARNING"}  # fmt: skip
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"], out.stdout + out.stderr
