"""The engines' settings, built from the gateway's Settings in one place."""

from __future__ import annotations

import menus
from gateway.core.settings import Settings
from menus.sms import SmsConfig


def engine_config(settings: Settings) -> menus.EngineConfig:
    return menus.EngineConfig(
        max_chars=settings.ussd_max_chars,
        max_steps=settings.ussd_max_steps,
        stale_after_days=settings.price_stale_days,
        voice_number=settings.voice_number,
    )


def sms_config(settings: Settings) -> SmsConfig:
    return SmsConfig(
        fold=settings.sms_fold, ussd_code=settings.ussd_code, report_tolerance=settings.price_report_tolerance,
        reports_per_day=settings.max_reports_per_enumerator_per_day, voice_number=settings.voice_number,
    )
