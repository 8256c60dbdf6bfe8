"""Everything that talks to NATS: connecting, the embedded nats-server, streams and consumers,
the heartbeat bucket, filling a batch from a pull consumer, and the NATS-native client.
May import `translator.contracts` and `translator.runtime`."""
