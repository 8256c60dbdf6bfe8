"""The scaler: reads consumer lag and worker heartbeats, starts and stops worker processes."""
