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
- `api`: the HTTP API (0.4.9's REST endpoints and LibreTranslate's), served by the shim's
  process; it talks to NATS like any client and uses only the torch-free parts of `inference`.
- `commands`: the `translator` command line, `translator up` included (it may import anything,
  the scaler and the shim too).

`scaler/` and `zmq_compat/` sit beside `worker`: they import contracts, runtime and bus (and the
shim, which serves the HTTP API, `api`)."""

__version__ = "0.5.0"
