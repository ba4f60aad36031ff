"""``mfx tui``: the full-screen terminal player, an API client of the daemon like kubectl."""
