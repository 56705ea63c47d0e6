"""Two web servers and two broadcaster workers on one database, as separate processes: a USSD
session whose hops alternate between the servers behaves as on one; a broadcast goes out once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from sqlmodel import select

from gateway.outbound import broadcast
from gateway.data import models
from tests.conftest import NOW

pytestmark = pytest.mark.db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


@pytest.fixture
def cluster(db_url, fake_at, tmp_path):
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": db_url,
        "GATEWAY_AT_API_KEY": "test-key",
        "GATEWAY_AT_BASE_URL": fake_at.url,
        "GATEWAY_WORKER_IN_PROCESS": "false",
        "GATEWAY_QUIET_HOURS": "",
        "GATEWAY_SECRET_KEY": "cluster-secret",
        "GATEWAY_DEV_MODE": "true",  # callbacks posted without a secret
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_WORKER_BATCH_SIZE": "200",
        "GATEWAY_WORKER_POLL_S": "0.2",
    }
    procs, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "gateway.app:app_factory", "--factory", "--port", str(port), "--log-level", "warning"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for url, proc in zip(urls, procs):
            wait_ready(url, proc)
        yield urls, procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_two_servers_and_two_workers(cluster, db, fake_at):
    urls, procs = cluster
    path = ["2", "1", "1", "0", "0", "4", "2", "1", "1", "1"]
    replies = []
    for n in range(len(path) + 1):
        form = {"sessionId": "multi-1", "phoneNumber": "+22370111000", "serviceCode": "*123#", "text": "*".join(path[:n])}
        replies.append(httpx.post(urls[n % 2] + "/webhooks/at/ussd", data=form, timeout=10).text)
    assert replies[1].startswith("CON I bisimila Sugu la!")
    assert "Tamati: sugu sugandi" in replies[3] and "Songo: senefen sugandi" in replies[4]
    assert "Tamati - Bamako" in replies[-1]  # the subscription made on one server, seen on the other

    with db.unit_of_work() as session:
        producers = [models.Producer(phone=f"+2237020{i:04d}", language="fr") for i in range(600)]
        session.add_all(producers)
        session.flush()
        session.add_all(models.Subscription(producer_id=p.id, crop_id=1, market_id=1) for p in producers)
        broadcast.publish_alerts(session, pairs=[(1, 1)], now=NOW)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with db.unit_of_work() as session:
            statuses = [b.status for b in session.exec(select(models.Broadcast))]
        if statuses == ["done"]:
            break
        time.sleep(0.3)
    assert statuses == ["done"], statuses
    numbers = [n for n, _, _ in fake_at.sent_messages() if n.startswith("+2237020")]
    assert len(numbers) == 600 and len(set(numbers)) == 600
    assert all(p.poll() is None for p in procs), "a process died"
