"""The voice room of messages: what a voice caller hears.

Prompts, numbers, prices and dates become playlists of recorded clips (ids, not audio): the
channel that plays them turns clip ids into files. Numbers are in `messages.voice.numbers`, their
rules in `rules/<lang>.toml`.
"""
