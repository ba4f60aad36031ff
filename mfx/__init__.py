"""mfx: a declarative control plane for a plugin-based music player."""

__version__ = "0.1.0"
