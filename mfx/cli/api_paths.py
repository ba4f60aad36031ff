"""Where the daemon serves what is no Kubernetes-style object: packages, trusted keys, the player."""

from __future__ import annotations

from mfx.api.kinds import GROUP, VERSION

PACKAGES_PATH = f"/apis/{GROUP}/{VERSION}/packages"
TRUSTED_KEYS_PATH = f"/apis/{GROUP}/{VERSION}/trustedkeys"
PLAYER_PATH = "/apis/player.mfx.musicfox.io/v1"
