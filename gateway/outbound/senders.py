"""Which aggregator sends SMS, from the settings: one place, imported by the web app and by
`gateway worker` alike. Kept apart from gateway.app so that a worker does not import the web
application (FastAPI, the console, the API) just to build its sender: that was most of its memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.aggregators.calling import VoiceCaller
    from gateway.aggregators.sending import SmsSender
    from gateway.core.settings import Settings

FAKE_AT_PREFIX = "/fake-at"
FAKE_ORANGE_PREFIX = "/fake-orange"
FAKE_ORANGE_SENDER = "tel:+2230000"
FAKE_AT_VOICE_PREFIX = "/fake-at-voice"
FAKE_VOICE_NUMBER = "+22320221234"  # a Bamako fixed line, as the fake needs a valid caller id


def build_sender(settings: Settings) -> SmsSender:
    """The sender of the aggregator chosen by GATEWAY_SMS_PROVIDER (replies, alerts, broadcasts).
    Only the chosen aggregator's adapter (and its HTTP client library) is imported."""
    if settings.sms_provider == "orange":
        from gateway.aggregators.orange import OrangeSender

        if settings.orange_uses_fake:
            # No credentials: development, against the fake mounted on this app (or the one named
            # by GATEWAY_ORANGE_BASE_URL), which accepts any.
            base = settings.orange_base_url or settings.public_url.rstrip("/") + FAKE_ORANGE_PREFIX
            sender, client_id, secret = settings.orange_sender_address or FAKE_ORANGE_SENDER, "fake", "fake"
        else:
            base, sender = settings.orange_base_url, settings.orange_sender_address
            client_id, secret = settings.orange_client_id, settings.orange_client_secret.get_secret_value()
        return OrangeSender(
            client_id=client_id,
            client_secret=secret,
            sender_address=sender,
            sender_name=settings.orange_sender_name,
            base_url=base,
            timeout_s=settings.orange_timeout_s,
        )
    from gateway.aggregators.africastalking import AfricasTalkingSender

    if settings.sms_uses_fake:
        # No credentials: development. SMS go to the fake server mounted on this app (or the
        # one named by GATEWAY_AT_BASE_URL), where they can be read.
        base = settings.at_base_url or settings.public_url.rstrip("/") + FAKE_AT_PREFIX
        return AfricasTalkingSender(username="sandbox", api_key="fake", base_url=base, timeout_s=settings.at_timeout_s)
    return AfricasTalkingSender(
        username=settings.at_username,
        api_key=settings.at_api_key.get_secret_value(),
        sender_id=settings.at_sender_id,
        base_url=settings.at_base_url,
        timeout_s=settings.at_timeout_s,
        trust_env=settings.at_trust_env,
    )


def sends_to_a_fake(settings: Settings) -> bool:
    if settings.sms_provider == "orange":
        return settings.orange_uses_fake and not settings.orange_base_url
    return settings.sms_uses_fake and not settings.at_base_url


def build_caller(settings: Settings) -> VoiceCaller | None:
    """The voice caller (calls back missed calls, voice alerts); None when calls cannot be
    placed: live keys but no GATEWAY_VOICE_NUMBER to call from."""
    from gateway.aggregators.africastalking_voice import AfricasTalkingCaller

    if settings.sms_uses_fake or settings.at_api_key is None:
        base = settings.voice_base_url or settings.public_url.rstrip("/") + FAKE_AT_VOICE_PREFIX
        return AfricasTalkingCaller(username="sandbox", api_key="fake", caller_id=settings.voice_number or FAKE_VOICE_NUMBER,
                                    base_url=base, timeout_s=settings.at_timeout_s)
    if not settings.voice_number:
        return None
    return AfricasTalkingCaller(
        username=settings.at_username,
        api_key=settings.at_api_key.get_secret_value(),
        caller_id=settings.voice_number,
        base_url=settings.voice_base_url,
        timeout_s=settings.at_timeout_s,
        trust_env=settings.at_trust_env,
    )
