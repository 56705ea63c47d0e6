"""The USSD channel: the callback (webhook.py) and the service that answers a hop (service.py)."""
