"""hello-python: an in-process (dynamic_library) Python plugin that greets by name."""
