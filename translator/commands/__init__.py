"""The `translator` command line (`main`): `up` (the whole service on one host), `worker`,
`submit`, `translate`, `status` and `models`. The top layer: it may import every other layer,
the scaler and the shim."""
