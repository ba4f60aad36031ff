"""hello-hot: a hot-reloaded UIExtension that renders the player's status line."""
