"""The SMS channel: callbacks per aggregator (webhook.py, webhook_orange.py), the service that
stores and answers an SMS (service.py), and the reply ceilings (replies.py)."""
