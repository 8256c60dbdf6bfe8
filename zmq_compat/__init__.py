"""The gateway shim: Meeshy's ZeroMQ protocol (PROTOCOL.md section 1) on top of JetStream.

Beside `translator.worker` in the layers: may import `translator.contracts`, `runtime` and
`bus`."""
