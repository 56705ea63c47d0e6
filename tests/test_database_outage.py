"""The database goes away mid-run and comes back: callers get apologies, the aggregator is told to
retry (503), and once the database is back every message is stored exactly once."""

from __future__ import annotations

import socket
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlmodel import func, select

from gateway.data import models
from gateway.app import create_app
from tests.conftest import NOW

pytestmark = pytest.mark.db


class Outage:
    """A TCP forwarder in front of PostgreSQL that can be cut and restored, like a server that
    stops and starts, without disturbing anything else using the real server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(32)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def stop(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass
        self._conns.clear()


def test_postgres_stops_and_comes_back(backend, db_url, db, fake_at):
    if backend.name != "postgresql":
        pytest.skip("the outage is staged in front of PostgreSQL")
    url = make_url(db_url)
    outage = Outage((url.host, url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=outage.port, query={"connect_timeout": "2"}).render_as_string(hide_password=False)
    from gateway.core.settings import Settings

    settings = Settings(database_url=proxied, secret_key="x", worker_in_process=False, content_cache_s=0,
                        at_api_key="test-key", at_base_url=fake_at.url)
    sms = lambda c, i: c.post("/webhooks/at/sms", data={"id": i, "from": "+22370000001", "text": "prix tomate sikasso"})  # noqa: E731
    hop = {"sessionId": "o1", "phoneNumber": "+22370000001", "serviceCode": "*123#", "text": ""}
    try:
        with TestClient(create_app(settings, clock=lambda: NOW)) as client:
            assert sms(client, "before").status_code == 200
            outage.stop()
            assert sms(client, "during").status_code == 503
            reply = client.post("/webhooks/at/ussd", data=hop).text
            assert reply.startswith("END Desole") and "Haketo" in reply
            assert client.post("/webhooks/at/sms/delivery", data={"id": "x", "status": "Success"}).status_code == 503
            assert client.get("/readyz").status_code == 503
            end = {"sessionId": "o1", "phoneNumber": "+22370000001", "status": "Success"}
            assert client.post("/webhooks/at/ussd/events", data=end).status_code == 503
            outage.start()
            assert sms(client, "during").status_code == 200  # the aggregator's retry
            assert sms(client, "during").status_code == 200  # and another: still once
            assert client.post("/webhooks/at/ussd", data=hop).text.startswith("CON ")
            assert client.get("/readyz").status_code == 200
    finally:
        outage.stop()
    with db.unit_of_work() as session:
        ids = session.exec(select(models.SmsInbound.provider_id).order_by(models.SmsInbound.id)).all()
        replies = session.exec(select(func.count()).select_from(models.SmsMessage)).one()
    assert ids == ["before", "during"] and replies == 2
