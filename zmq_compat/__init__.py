"""The gateway shim: Meeshy's ZeroMQ protocol (PROTOCOL.md section 1) on top of JetStream."""
