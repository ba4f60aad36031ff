"""The audio engine process: every open PCM, decoding, processors and the real-time writers,
apart from the daemon (see ``mfx.engine.api``).

In the engine process (``python -m mfx.engine --home H``):
``core.Engine`` (sinks, plugins, playback, events) over ``sinks``, ``plugins``,
``playback``, ``tracks`` and ``events``; ``server`` puts it on ``H/engine/engine.sock``
(``protocol``, ``wire``, ``sockets``), ``lock`` keeps it alone on its home.

In the daemon: ``client.EngineClient`` (the ``AudioEngine``) over ``connection``, mirroring
what it asked for in ``mirror``; ``supervisor.EngineSupervisor`` adopts or starts the engine
(``spawn``), watches it and restores a new one after a crash.
"""
