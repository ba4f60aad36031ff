"""Entry point: ``python -m local_music`` (started by the mfx daemon, not by hand)."""

from local_music.plugin import LocalMusic
from mfx.sdk import serve

serve(LocalMusic())
