"""Prometheus metrics: counters kept by the web process, and outbox figures read from the
database when scraped (so every process reports the same, whatever served the traffic)."""

from __future__ import annotations

import datetime as dt

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func
from sqlmodel import col, select

from gateway.data import models


class Metrics:
    def __init__(self, app) -> None:
        self.registry = CollectorRegistry()
        self.ussd_hops = Counter("sugu_ussd_hops", "USSD hops answered", ["outcome"], registry=self.registry)
        self.ussd_latency = Histogram(
            "sugu_ussd_hop_seconds", "Time to answer a USSD hop", registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.webhook_errors = Counter("sugu_webhook_errors", "Webhook requests not handled", ["kind"], registry=self.registry)
        self.registry.register(_OutboxCollector(app))
        self.registry.register(_ReplyCollector(app))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _OutboxCollector:
    def __init__(self, app) -> None:
        self.app = app

    def collect(self):
        state = self.app.state
        now = state.clock().astimezone(dt.timezone.utc)
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        m = models.SmsMessage
        by_status = GaugeMetricFamily("sugu_sms_messages", "SMS created this month, by status", labels=["status"])
        cost = GaugeMetricFamily("sugu_sms_cost_xof", "What SMS cost this month (XOF)")
        depth = GaugeMetricFamily("sugu_outbox_depth", "SMS waiting to be sent")
        lag = GaugeMetricFamily("sugu_worker_lag_seconds", "Age of the oldest SMS due and not sent")
        try:
            with state.db.unit_of_work() as session:
                total_cost = 0.0
                for status, n, c in session.exec(
                    select(m.status, func.count(), func.coalesce(func.sum(m.cost_amount), 0)).where(m.created_at >= month).group_by(m.status)
                ).all():
                    by_status.add_metric([status], n)
                    total_cost += float(c)
                queued = session.exec(select(func.count()).where(m.status == "queued")).one()
                oldest = session.exec(
                    select(func.min(m.created_at)).where(
                        m.status == "queued", (col(m.next_attempt_at).is_(None)) | (col(m.next_attempt_at) <= now)
                    )
                ).one()
        except Exception:
            return  # the database is down: /readyz says so; no figures rather than wrong ones
        cost.add_metric([], total_cost)
        depth.add_metric([], queued)
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.timezone.utc)
            lag.add_metric([], max((now - oldest).total_seconds(), 0))
        else:
            lag.add_metric([], 0)
        yield from (by_status, cost, depth, lag)


class _ReplyCollector:
    """The reply ceilings (gateway.outbound.replies), from the shared ledger: the same in every process."""

    def __init__(self, app) -> None:
        self.app = app

    def collect(self):
        from gateway.outbound import replies

        state = self.app.state
        try:
            with state.db.unit_of_work() as session:
                today = replies.today(session, state.clock(), state.settings.tz)
        except Exception:
            return
        spent = GaugeMetricFamily("sugu_replies_today", "Replies reserved today (GATEWAY_DAILY_REPLY_BUDGET)")
        spent.add_metric([], today.replies)
        refused = GaugeMetricFamily(
            "sugu_replies_refused_today", "Replies not sent today, by the ceiling that refused them", labels=["ceiling"]
        )
        for ceiling, n in today.refused.items():
            refused.add_metric([ceiling], n)
        yield from (spent, refused)
