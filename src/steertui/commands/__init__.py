"""One module per CLI command; each exposes ``register(subparsers)`` and imports heavy things lazily."""
