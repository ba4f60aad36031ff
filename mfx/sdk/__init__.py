"""mfx.sdk: what a plugin author imports.

Every RPC plugin process imports this package first, so it imports nothing heavy: the
standard library pieces ``serve`` needs and orjson.
"""

from mfx.sdk.plugin import Plugin, PluginInfo
from mfx.sdk.serve import serve

__all__ = ["Plugin", "PluginInfo", "serve"]
