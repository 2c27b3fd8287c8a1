#!/bin/bash
# The transfer study on the real same-family instruct pair (Qwen2.5-Coder 0.5B → 1.5B Instruct, GGUF) through the
# product's one command: the seven CAA behaviours (or those given), the honest protocol, one results file and page.
#   bash scripts/get-models.sh qwen                           # once, ~1.4 GB
#   bash benchmarks/real_pair_study.sh runs/study-qwen [caa:refusal caa:sycophancy ...] [-- more lrt study flags]
# Resumable: run it again with the same arguments and --resume after the `--`.
# The earlier scripts (real_pair.py, real_pair_diffmap.py, real_pair_cli.sh, real_pair_summary.py,
# real_pair_swap.py) that produced the first tables of docs/real-pair.md are in git history before this commit.
set -euo pipefail
OUT=${1:?output directory}; shift
M=${MODELS:-$HOME/.cache/lrt-models}
S=${S:-$M/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}; T=${T:-$M/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}
B=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do B+=(--behaviours "$1"); shift; done; [ "${1:-}" = "--" ] && shift
[ ${#B[@]} -gt 0 ] || for b in corrigible-neutral-HHH hallucination coordinate-other-ais refusal survival-instinct \
  sycophancy myopic-reward; do B+=(--behaviours "caa:$b"); done
lrt study --source "$S" --target "$T" --chat "${B[@]}" --out "$OUT" "$@"
