"""Meeshy's translator: batched transformer workers on NATS JetStream.

Subpackages, by layer (a layer imports only the layers listed before it, never one above):

- `contracts`: subjects, message models, settings, errors: the public contracts.
- `runtime`: process plumbing shared by every service: logs, tracing, metrics, health, signals,
  child processes, the services' entry point.
- `bus`: talking to NATS: connecting, the embedded server, streams and consumers, the
  heartbeat bucket, pull fetching, the NATS-native client.
- `inference`: models and what runs them: languages, families, quantization, loading, the
  engine, language detection, random-weight models. It needs no NATS.
- `worker`: the worker process: jobs, the batch stages, fates, results, heartbeats.
- `commands`: the `translator` command line, `translator up` included (it may import anything,
  the scaler and the shim too).

`scaler/` and `zmq_compat/` sit beside `worker`: they import contracts, runtime and bus."""

__version__ = "0.5.0"
