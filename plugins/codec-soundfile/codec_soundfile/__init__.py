"""codec-soundfile: audio decoding through libsndfile (the ``soundfile`` package)."""
