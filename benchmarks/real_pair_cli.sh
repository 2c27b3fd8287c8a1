#!/bin/bash
# The README's recipe for an instruct pair, through the CLI, for one CAA behaviour: a map refitted on the *other*
# behaviours' contrast differences, CAA vectors on both models, A·v, and an all-position evaluation with the α range
# chosen from the native curve against 8 random vectors. The numbers in docs/real-pair.md ("All-position steering")
# come from benchmarks/real_pair_diffmap.py, which calls the same library functions for all seven behaviours.
#   bash ../shared/scripts/get-qwen-pair.sh          # once
#   bash benchmarks/real_pair_cli.sh corrigible-neutral-HHH runs/cli-pair   # ≈ 35 min on 2 idle CPU cores (50 items)
# Any pair: S=... T=... LS=... LT=... bash benchmarks/real_pair_cli.sh BEHAVIOUR OUT
set -euo pipefail
B=${1:?behaviour, e.g. corrigible-neutral-HHH}; OUT=${2:-runs/cli-pair}
M=${MODELS:-$HOME/.cache/lrt-models}
S=${S:-$M/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}; T=${T:-$M/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}
LS=${LS:-12}; LT=${LT:-14}; CAA=${CAA:-$(dirname "$0")/../../shared/data/caa}
OTHERS=()
for f in "$CAA"/generate/*/generate_dataset.json; do
  [ "$(basename "$(dirname "$f")")" = "$B" ] || OTHERS+=(--contrast-sets "$f")   # never the evaluated behaviour
done
lrt fit-map --source "$S" --target "$T" --source-layer "$LS" --target-layer "$LT" --tokens "${TOKENS:-8000}" \
  --context 128 --chat "${OTHERS[@]}" --out "$OUT/map"
lrt steer --model "$S" --layer "$LS" --contrast "$CAA/generate/$B/generate_dataset.json" --chat --max-pairs 60 \
  --out "$OUT/small"
lrt steer --model "$T" --layer "$LT" --contrast "$CAA/generate/$B/generate_dataset.json" --chat --max-pairs 60 \
  --out "$OUT/native"
lrt transfer --vector "$OUT/small" --map "$OUT/map" --mode direction --out "$OUT/transferred"
lrt evaluate --model "$T" --native "$OUT/native" --vector "$OUT/transferred" --chat \
  --test "$CAA/test/$B/test_dataset_ab.json" --positions "${POSITIONS:-all}" --alpha-search --alpha-steps 5 \
  --search-items 8 --n-random 8 --out "$OUT/eval"
