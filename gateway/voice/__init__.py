"""The voice channel, for farmers who cannot read: the callback (webhook.py), the service that
answers a key press with the menus spoken (service.py), and the audio it plays: recordings, or
synthetic prompts until someone records them, joined into one file per prompt (prompts.py)."""
