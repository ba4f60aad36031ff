"""Plugins the tests load (``plugin_dir`` = ``tests/plugins``, entry ``python:testkit.<module>:<Class>``)."""
