"""Where the daemon serves what is no Kubernetes-style object: packages and trusted keys (the
player's API is in ``player_requests``)."""

from __future__ import annotations

from mfx.api.kinds import GROUP, VERSION

PACKAGES_PATH = f"/apis/{GROUP}/{VERSION}/packages"
TRUSTED_KEYS_PATH = f"/apis/{GROUP}/{VERSION}/trustedkeys"
