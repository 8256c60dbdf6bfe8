"""The HTTP API: the 0.4.9 translator's REST endpoints and LibreTranslate's, on the ASGI
application the shim serves on port 8000 (docs/API.md). Every translation goes through NATS
like any other client's. May import `translator.contracts`, `runtime`, `bus`, and the torch-free
parts of `inference` (the model catalog, language codes)."""
