"""The audio engine process: every open PCM, decoding, processors and the real-time writers,
apart from the daemon (see ``mfx.engine.api``)."""
