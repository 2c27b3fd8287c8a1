"""Argument definitions of the steering commands; handlers live in :mod:`lrt.steering.commands`."""

from __future__ import annotations

H = "lrt.steering.commands:"


def _alphas(p) -> None:
    p.add_argument("--alphas", default=None,
                   help="comma list of α (fractions of the layer's median token norm); must contain 0")
    p.add_argument("--alpha-max", type=float, default=0.25, help="default grid: 7 steps in ±alpha-max")
    p.add_argument("--n-random", type=int, default=12, help="random vectors of the same norm")


def _data(p) -> None:
    p.add_argument("--concept", default="sentiment", help="built-in concept: sentiment | genre:X:Y")
    p.add_argument("--concept-corpus", default=None, help="corpus with labelled texts for --concept")
    p.add_argument("--contrast", default=None, help="A/B contrast data (CAA JSON, MWE JSONL, or prompt/positive/"
                                                     "negative JSONL) instead of a concept")
    p.add_argument("--max-pairs", type=int, default=300)
    p.add_argument("--chat", action="store_true", help="wrap questions in the tokenizer's chat template")
    p.add_argument("--method", default="mean", choices=["mean", "pca"], help="CAA mean difference, or PCA")
    p.add_argument("--position", default="mean", choices=["mean", "last"],
                   help="text concepts: mean over tokens or last token")


def add_commands(sub, model_flags, fit_flags) -> None:
    p = sub.add_parser("steer", help="compute a steering vector on one model")
    p.add_argument("--model", required=True)
    p.add_argument("--layer", required=True)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    _data(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gguf", default=None, help="also export a llama.cpp / repeng control vector to this file")
    p.add_argument("--out", required=True)
    p.set_defaults(func=H + "steer_cmd")

    p = sub.add_parser("transfer", help="carry a vector through a map (A·v, or A·v + p)")
    p.add_argument("--vector", required=True, help="vector directory (from lrt steer)")
    p.add_argument("--map", required=True, help="map directory (from lrt fit-map)")
    p.add_argument("--mode", default="direction", choices=["direction", "point"])
    p.add_argument("--rescale", action="store_true", help="rescale to the target layer's median norm ratio")
    p.add_argument("--out", required=True)
    p.set_defaults(func=H + "transfer_cmd")

    p = sub.add_parser("evaluate", help="evaluate vectors on the target: native vs transferred vs random")
    p.add_argument("--model", required=True, help="the model the vectors are applied to (the target)")
    p.add_argument("--native", required=True, help="native vector directory (computed on this model)")
    p.add_argument("--vector", action="append", default=[], help="other vector directories (repeatable)")
    p.add_argument("--test", default=None, help="A/B test file; default: sentiment items")
    p.add_argument("--eval-corpus", default=None, help="corpus with held-out reviews for sentiment items")
    p.add_argument("--lowercase", action="store_true", help="lower-case the sentiment prompts")
    p.add_argument("--chat", action="store_true")
    p.add_argument("--mmlu", default=None, help="A/B capability set (e.g. ../shared/data/caa/test/mmlu/mmlu.json):"
                                                " accuracy unsteered and at the largest α")
    p.add_argument("--mmlu-items", type=int, default=100)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    _alphas(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=H + "evaluate_cmd")

    p = sub.add_parser("report", help="write the HTML report of a results directory")
    p.add_argument("results", help="directory holding results.json (or the file)")
    p.add_argument("-o", "--output", default=None, help="HTML file (default: RESULTS/report.html)")
    p.set_defaults(func=H + "report_cmd")

    p = sub.add_parser("generate", help="generate text with a steering vector applied")
    p.add_argument("--model", required=True)
    p.add_argument("--vector", required=True)
    p.add_argument("--alpha", type=float, default=0.2, help="fraction of the layer's median token norm")
    p.add_argument("--prompt", action="append", required=True)
    p.add_argument("--where", default="all", choices=["all", "after_prompt", "generated"])
    p.add_argument("--mode", default="add", choices=["add", "ablate", "clamp"])
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=H + "generate_cmd")

    p = sub.add_parser("demo", help="the whole job on the embedded family (no download): map, vectors, report")
    model_flags(p)
    p.add_argument("--corpus", default=None, help="text for the map (default: shipped held-out text)")
    p.add_argument("--tokens", type=int, default=None, help="tokens for the map (default 60000)")
    _data(p)
    p.add_argument("--test", default=None, help="A/B test file (with --contrast)")
    p.add_argument("--eval-corpus", default=None)
    _alphas(p)
    p.add_argument("--out", default="lrt-demo")
    p.set_defaults(func=H + "demo_cmd")
