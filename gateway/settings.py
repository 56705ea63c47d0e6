"""Configuration, read from the environment (prefix GATEWAY_) when an app or command starts."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite:///var/sugu.db"


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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
