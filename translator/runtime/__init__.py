"""Process plumbing shared by the worker, the scaler and the shim: log lines, tracing,
OpenTelemetry metrics, the health and metrics endpoint, signals, child processes, and the
services' entry point. May import `translator.contracts` only."""
