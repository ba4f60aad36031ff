"""The web UI the daemon serves on ``--ui-address``: pages that follow the API's watch."""
