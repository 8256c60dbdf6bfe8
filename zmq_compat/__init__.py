"""The gateway shim: Meeshy's ZeroMQ protocol (PROTOCOL.md section 1) on top of JetStream.

Beside `translator.worker` in the layers: may import `translator.contracts`, `runtime`, `bus`,
and `api` (the process serves the HTTP API too) with the torch-free parts of `inference`."""
