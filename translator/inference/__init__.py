"""Models and what runs them: language codes, model families, quantization plans, loading with
`from_pretrained`, the engine (one `generate()` per group), language detection, and models with
random weights for tests and benchmarks. May import `translator.contracts` and
`translator.runtime`; never NATS (`translator.bus`) nor the worker."""
