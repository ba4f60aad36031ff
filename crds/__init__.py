"""CustomResourceDefinitions of the mfx kinds: the single source of schema truth (package data)."""
