"""Meeshy's translator: batched transformer workers on NATS JetStream."""

__version__ = "0.5.0"
