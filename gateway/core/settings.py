"""Configuration, read from the environment (prefix GATEWAY_) when an app or command starts."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite:///var/sugu.db"


def parse_window(value: str) -> tuple[dt.time, dt.time]:
    """'20:00-07:00' → (20:00, 07:00); a window may wrap past midnight."""
    try:
        start, end = (dt.time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError:
        raise ValueError(f"expected HH:MM-HH:MM, got {value!r}") from None
    return start, end


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    database_url: str = Field(
        DEFAULT_SQLITE_URL,
        description="SQLAlchemy URL; PostgreSQL as postgresql+psycopg://user:pass@host/db",
    )
    ussd_max_chars: int = Field(160, ge=80, le=182, description="Characters per USSD screen")
    ussd_max_steps: int = Field(40, ge=5, le=200, description="Inputs per USSD session")
    price_stale_days: int = Field(10, ge=1, description="Older prices say how old they are")
    timezone: str = "Africa/Bamako"
    log_level: str = "INFO"
    log_json: bool = Field(False, description="JSON log lines (production) instead of text")
    db_pool_size: int = Field(10, ge=1, description="PostgreSQL connections per process")
    sqlite_cache_mb: int = Field(
        4, ge=1, description="SQLite: memory for the page caches of all connections of a process together"
    )
    public_url: str = Field(
        "http://127.0.0.1:8000", description="Where this server is reached (links, the local fake)"
    )
    console_language: Literal["fr", "en"] = Field(
        "fr", description="The staff console's language for whoever has not chosen one (fr, en)"
    )
    ussd_code: str = Field("*123#", description="The USSD code, quoted in SMS help texts")
    content_cache_s: float = Field(
        5.0, ge=0, description="Seconds menus may show cached prices, demands, tips (0: none)"
    )

    # Africa's Talking. Without an API key, SMS go to the built-in fake server (development).
    at_username: str = "sandbox"
    at_api_key: SecretStr | None = None
    at_sender_id: str | None = Field(None, description="Alphanumeric sender id or short code")
    at_base_url: str | None = Field(
        None, description="API base URL (default: live or sandbox by username; the fake without a key)"
    )
    at_timeout_s: float = Field(10.0, gt=0, description="Read timeout of one send request")
    at_trust_env: bool = Field(
        False, description="Use HTTP(S)_PROXY and REQUESTS_CA_BUNDLE from the environment for sending"
    )
    # Which aggregator sends SMS (replies, alerts, broadcasts); USSD stays with the aggregator that
    # hosts the short code. `fake`: the built-in fake of Africa's Talking, whatever keys are set.
    sms_provider: Literal["africastalking", "orange", "fake"] = Field(
        "africastalking", description="SMS aggregator: africastalking | orange | fake"
    )
    # Orange's SMS API. Without credentials, SMS go to the built-in fake Orange (development).
    orange_client_id: str | None = None
    orange_client_secret: SecretStr | None = None
    orange_sender_address: str | None = Field(
        None, description="The application's sender number, e.g. tel:+2230000 (required with credentials)"
    )
    orange_sender_name: str | None = Field(None, description="A sender name registered with Orange")
    orange_base_url: str | None = Field(
        None, description="API base URL (default https://api.orange.com; the fake without credentials)"
    )
    orange_timeout_s: float = Field(10.0, gt=0, description="Read timeout of one Orange request")
    # Voice (Africa's Talking Voice). A call to the service number is rejected, which costs the
    # caller nothing, and the caller is called back; `answer` picks up instead (for numbers where
    # the call is free to the caller).
    voice_inbound: Literal["callback", "answer"] = Field(
        "callback", description="Inbound calls: callback (reject, then call back: free) | answer"
    )
    voice_number: str = Field("", description="The service's voice number, E.164: the caller id of calls placed")
    voice_base_url: str | None = Field(
        None, description="Voice API base URL (default: live or sandbox by username; the fake without a key)"
    )
    voice_callback_delay_s: int = Field(15, ge=0, le=600, description="Seconds between a missed call and the call back")
    voice_callbacks_per_phone_per_day: int = Field(
        3, ge=0, description="Calls back per phone and day; beyond, a missed call is only rejected"
    )
    voice_minutes_per_day: int = Field(600, ge=0, description="Minutes of calls Sugu places per day, then none")
    voice_call_minutes_estimate: int = Field(
        3, ge=1, le=60, description="Minutes reserved from the daily budget when a call is placed (settled after)"
    )
    voice_francs_per_day: int = Field(36_000, ge=0, description="Francs (XOF) of calls Sugu places per day, then none")
    voice_price_per_minute: float = Field(
        60.0, ge=0, description="XOF per minute of a call placed: the estimate reserved from the francs budget, "
        "and the cost of a call whose final callback gives none in XOF"
    )
    voice_retry_after_s: int = Field(600, ge=30, description="Wait before calling again a call not answered")
    voice_max_attempts: int = Field(2, ge=1, le=5, description="Tries per call (2: an unanswered call is retried once)")
    voice_concurrent_calls: int = Field(10, ge=1, description="Calls being placed or in progress at once, at most")
    voice_alerts_per_phone_per_day: int = Field(1, ge=0, description="Voice alert calls per phone and day; beyond, SMS only")
    voice_alert_attempts: int = Field(3, ge=1, le=5, description="Tries per voice alert (3: an unanswered one is retried twice)")
    broadcast_approval_threshold: int = Field(
        500, ge=0, description="Console broadcasts to more recipients need a second staff member's approval"
    )
    secret_key: SecretStr | None = Field(
        None, description="Signs console cookies; default: a random key kept in secret_key_file"
    )
    secret_key_file: str = Field("var/secret.key", description="Where the generated key is kept")

    sms_fold: bool = Field(
        True, description="Write SMS in GSM-7 look-alikes (sòngò, not sɔngɔ) when that avoids UCS-2"
    )
    sms_replies_per_day: int = Field(
        10, ge=0, description="Replies per phone number and day; beyond, messages are stored unanswered"
    )
    # Broadcaster: cost controls, in the farmers' time zone.
    quiet_hours: str = Field("20:00-07:00", description="No alerts or broadcasts in this window (empty: none)")
    daily_sms_budget: int = Field(50_000, ge=0, description="Alert and broadcast SMS per day, then pause")
    daily_segment_budget: int = Field(60_000, ge=0, description="Alert and broadcast segments per day")
    max_sms_per_producer_per_day: int = Field(3, ge=1, description="Alerts and broadcasts per phone per day")
    sms_price_per_segment: float = Field(10.0, ge=0, description="For cost estimates (XOF)")
    worker_in_process: bool = Field(True, description="`gateway serve` also runs a broadcaster")
    worker_batch_size: int = Field(5000, ge=1, description="Messages claimed per worker step")
    worker_poll_s: float = Field(1.0, gt=0, description="Idle worker's pause between looks at the outbox")
    retry_backoff_s: float = Field(
        30.0, gt=0, description="First wait before resending an SMS that failed before it left (doubles each time, at most 1 h)"
    )
    worker_lease_s: int = Field(
        60, ge=2, le=60,
        description="A killed worker's claimed SMS (and calls not yet dialled) go back to the queue after this many seconds "
        "(renewed while it lives)",
    )
    # Hardening. Outside development mode the server refuses to start without a webhook secret (or
    # an allow-list of the aggregator's networks): a forged callback could publish prices, opt
    # farmers out or make the service text any number.
    dev_mode: bool = Field(
        False, description="Development: fake aggregators on loopback, callbacks accepted without a secret"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="When set, aggregator callbacks must carry ?token=<this> (else 403)"
    )
    webhook_allow_networks: str = Field(
        "", description="Comma-separated networks callbacks may come from (empty: any), e.g. 196.201.214.0/24"
    )
    allowed_countries: str = Field(
        "ML", description="Comma-separated ISO regions whose numbers get replies (SMS pumping), e.g. ML,SN"
    )
    new_number_replies_per_hour: int = Field(
        200, ge=0, description="Replies per hour, all together, to numbers first heard from in the last 24 hours"
    )
    daily_reply_budget: int = Field(
        5_000, ge=0, description="Replies (SMS answers, directory SMS) per day, apart from the bulk budget"
    )
    max_body_bytes: int = Field(16_384, ge=1024, description="Largest request body for webhooks")
    max_upload_bytes: int = Field(5_000_000, ge=1024, description="Largest request body for the console and API")
    body_timeout_s: float = Field(
        20.0, gt=0, description="Seconds a client has to send a request's whole body (then 408: slow-loris)"
    )
    ussd_hops_per_minute: int = Field(60, ge=1, description="Per phone and process; beyond, the session ends")
    price_report_tolerance: float = Field(
        2.0, gt=1.0, description="Reports above x or below 1/x of the reference price are held for review"
    )
    max_reports_per_enumerator_per_day: int = Field(
        20, ge=1, description="Price reports an enumerator's number may publish a day; beyond, they are held"
    )
    retention_days: int = Field(
        400, ge=0, description="SMS and USSD session rows older than this many days are pruned daily (0: keep all)"
    )
    buyer_summary_hour: int = Field(
        18, ge=0, le=23, description="Hour (farmers' time) from which workers send buyers their daily offer summary"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone
        return value

    @field_validator("allowed_countries")
    @classmethod
    def _regions(cls, value: str) -> str:
        import phonenumbers

        regions = [part.strip().upper() for part in value.split(",") if part.strip()]
        if not regions:
            raise ValueError("name at least one region (ISO 3166 codes such as ML)")
        known = phonenumbers.SUPPORTED_REGIONS
        unknown = [r for r in regions if r not in known]
        if unknown:
            raise ValueError(f"unknown region {unknown[0]!r} (ISO 3166 codes such as ML, SN, CI)")
        return ",".join(regions)

    @property
    def allowed_regions(self) -> frozenset[str]:
        return frozenset(r for r in self.allowed_countries.split(",") if r)

    @property
    def webhook_guarded(self) -> bool:
        """Callbacks need a secret or come from listed networks."""
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        return bool(secret) or bool(self.webhook_allow_networks.strip())

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_window(cls, value: str) -> str:
        if value.strip():
            parse_window(value)
        return value.strip()

    @property
    def quiet_window(self) -> tuple[dt.time, dt.time] | None:
        return parse_window(self.quiet_hours) if self.quiet_hours else None

    @model_validator(mode="after")
    def _orange_sender(self) -> "Settings":
        if self.sms_provider == "orange" and self.orange_has_credentials and not self.orange_sender_address:
            raise ValueError("GATEWAY_ORANGE_SENDER_ADDRESS is required with Orange credentials")
        return self

    @property
    def sms_uses_fake(self) -> bool:
        """SMS go to the built-in fake of Africa's Talking."""
        if self.sms_provider == "fake":
            return True
        no_key = self.at_api_key is None or not self.at_api_key.get_secret_value()
        return self.sms_provider == "africastalking" and no_key

    @property
    def orange_has_credentials(self) -> bool:
        secret = self.orange_client_secret.get_secret_value() if self.orange_client_secret else ""
        return bool(self.orange_client_id and secret)

    @property
    def orange_uses_fake(self) -> bool:
        """SMS go to the built-in fake Orange: Orange chosen, no credentials."""
        return self.sms_provider == "orange" and not self.orange_has_credentials
