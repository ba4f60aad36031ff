"""local-music: a MusicSource over the audio files in configured folders.

The library logic (``library.Library``) is plain Python with no RPC in it; ``plugin``
wraps it as an ``mfx.sdk`` MusicSource and ``__main__`` serves that over JSON-RPC.
"""
