"""The scaler: reads consumer lag and worker heartbeats, starts and stops worker processes.

Beside `translator.worker` in the layers: may import `translator.contracts`, `runtime` and
`bus`; it starts workers as processes, never imports them."""
