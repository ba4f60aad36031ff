"""Entry point: ``python -m hello_rpc`` (started by the mfx daemon, not by hand)."""

from hello_rpc import HelloPlugin
from mfx.sdk import serve

serve(HelloPlugin())
