"""The web UI (``mfx serve --ui-address``): pages and live streams for a browser.

It is an API client like ``mfx`` and kubectl: everything it shows comes from the daemon's
API (lists, watches, logs, /metrics, the player and plugin-call APIs) through
``DaemonClient``, so the same app could run as a process of its own.
"""
