"""One module per CLI command; each exposes ``register(subparsers)``. See engine/__main__.py."""
