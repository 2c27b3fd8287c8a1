#!/usr/bin/env bash
# All benchmarks, one after another, output to benchmarks/results-<host>.txt (quoted in docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out="benchmarks/results-$(hostname).txt"
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc) cores  $(python -c 'import torch; print("torch", torch.__version__)')"
  echo "\$ python benchmarks/bench_fit.py --rows 200000 --ds 512 --dt 768"
  python benchmarks/bench_fit.py --rows 200000 --ds 512 --dt 768
  echo "\$ python benchmarks/bench_harvest.py --model zoo-m --layer 1"
  python benchmarks/bench_harvest.py --model zoo-m --layer 1
  echo "\$ python benchmarks/bench_harvest.py --config llama-768x12 --layer 5 --batches 3"
  python benchmarks/bench_harvest.py --config llama-768x12 --layer 5 --batches 3
  echo "\$ python benchmarks/bench_grid.py --model zoo-m --layer 1"
  python benchmarks/bench_grid.py --model zoo-m --layer 1
  echo "\$ python benchmarks/bench_caa.py --model zoo-m --behaviour refusal --pairs 150 --config llama-768x12"
  python benchmarks/bench_caa.py --model zoo-m --behaviour refusal --pairs 150 --config llama-768x12
  echo "\$ python benchmarks/bench_train_jobs.py --steps 40"
  python benchmarks/bench_train_jobs.py --steps 40
} 2>&1 | grep -vE "Loading weights|it/s\]" | tee "$out"
