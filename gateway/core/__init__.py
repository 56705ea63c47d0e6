"""Infrastructure every room uses, importing no other room: settings, the database and
migrations, start-up checks, logs, middleware, request dependencies, phone numbers."""
