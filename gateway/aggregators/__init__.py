"""One module per aggregator: its form fields, status words and error codes stop here. Beside
them, the sender interface they implement (sending.py) and what every callback shares
(callbacks.py); the fakes stand in for them in development and tests."""
