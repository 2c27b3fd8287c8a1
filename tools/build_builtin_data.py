"""Build the data sets shipped inside the package (``src/lrt/data/builtin``) from the development folder ``../shared``.

    python tools/build_builtin_data.py [--shared ../shared]

Deterministic (a fixed seed, sorted keys, gzip without timestamps): running it twice gives the same bytes. Writes:

- ``caa/<behaviour>/{generate,test}.json.gz`` (the CAA A/B sets as published), ``caa/<behaviour>/open-ended.json.gz``;
- ``caa-yesno/``, ``caa-persona/``, ``caa-text/`` — the same records in Yes/No, persona and free-text form
  (:mod:`lrt.data.formats`);
- ``mmlu.json.gz``, ``truthfulqa.json.gz`` (A/B, ``correct`` / ``incorrect``), and their free-text form;
- ``text.jsonl.gz``: a sample of the natural-text corpus stratified by source (every Brown category, both review
  labels), with its ``source`` / ``doc_id`` labels;
- ``index.json``: every set's name, file, kind, records, family (what a leave-out excludes), sha256, licence, source.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lrt.data.contrasts import load_contrasts  # noqa: E402
from lrt.data.formats import CONVERSIONS, options_are_statements  # noqa: E402

OUT = ROOT / "src" / "lrt" / "data" / "builtin"
BEHAVIOURS = ("coordinate-other-ais", "corrigible-neutral-HHH", "hallucination", "myopic-reward", "refusal",
              "survival-instinct", "sycophancy")
CAA_LICENCE = "MIT (CAA datasets, Rimsky et al. 2024); built on Anthropic's model-written evals (CC-BY-4.0)"
CAA_SOURCE = "Steering Llama 2 via Contrastive Activation Addition (Rimsky et al. 2024), datasets as published"
TEXT_SAMPLE = {"brown": ("category", 20), "movie_reviews": ("label", 250), "abc": (None, 300),
               "state_union": (None, 15), "inaugural": (None, 1000), "webtext": (None, 120)}
TEXT_LICENCES = {
    "brown": "Brown Corpus (Francis & Kučera 1961/1979), via NLTK data: non-commercial research use",
    "movie_reviews": "Movie Review Data v2.0 (Pang & Lee 2004), via NLTK data: research use",
    "abc": "ABC Rural / Science news transcripts, via NLTK data: research use (© Australian Broadcasting Corporation)",
    "state_union": "State of the Union addresses 1945–2006, via NLTK data: public domain (US government works)",
    "inaugural": "US presidential inaugural addresses, via NLTK data: public domain (US government works)",
    "webtext": "NLTK web text (forums, reviews, scripts), via NLTK data: research use",
}


CONTENT = {}   # file (relative) -> sha256 of the uncompressed text: a user's own copy of a shipped file matches it


def write_gz(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    CONTENT[path.relative_to(OUT).as_posix()] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
        f.write(text.encode("utf-8"))
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(path.read_bytes()).hexdigest()


def records_json(records) -> str:
    return json.dumps([{"question": c.prompt, "answer_matching_behavior": c.positive,
                        "answer_not_matching_behavior": c.negative} for c in records], indent=1, ensure_ascii=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = ap.parse_args()
    shared = Path(args.shared)
    caa = shared / "data" / "caa"
    index = {}

    def add(name, rel, kind, n, family, licence, source, sha, **extra):
        index[name] = {"file": rel, "kind": kind, "records": n, "family": family, "sha256": sha, "licence": licence,
                       "source": source, "content_sha256": CONTENT[rel], **extra}

    for b in BEHAVIOURS:
        # the persona rewrite keeps each option's question where the options are answers, not statements: decided
        # on the generate set, and the test set follows it
        keep_question = not options_are_statements(load_contrasts(caa / "generate" / b / "generate_dataset.json"))
        for part, src in (("generate", caa / "generate" / b / "generate_dataset.json"),
                          ("test", caa / "test" / b / "test_dataset_ab.json")):
            recs = load_contrasts(src)
            rel = f"caa/{b}/{part}.json.gz"
            sha = write_gz(OUT / rel, src.read_text(encoding="utf-8"))
            add(f"caa:{b}/{part}", rel, "contrast" if part == "generate" else "test", len(recs), f"caa:{b}",
                CAA_LICENCE, CAA_SOURCE, sha, format="A/B letters")
            for form, fn in CONVERSIONS.items():
                extra = {"question_kept": keep_question} if form == "persona" else {}
                conv, skipped = fn(recs, keep_question) if form == "persona" else fn(recs)
                rel = f"caa-{form}/{b}/{part}.json.gz"
                sha = write_gz(OUT / rel, records_json(conv))
                add(f"caa-{form}:{b}/{part}", rel, "contrast" if part == "generate" else "test", len(conv),
                    f"caa:{b}", CAA_LICENCE, CAA_SOURCE + f"; rewritten in {form} form by lrt.data.formats",
                    sha, format={"yesno": "Yes/No", "persona": "persona A/B", "text": "free text"}[form],
                    skipped=skipped, **extra)
        src = caa / "test" / b / "test_dataset_open_ended.json"
        rel = f"caa/{b}/open-ended.json.gz"
        n = len(json.loads(src.read_text(encoding="utf-8")))
        add(f"caa:{b}/open-ended", rel, "prompts", n, f"caa:{b}", CAA_LICENCE, CAA_SOURCE,
            write_gz(OUT / rel, src.read_text(encoding="utf-8")))
    for name, src, lic, source in (
            ("mmlu", caa / "test" / "mmlu" / "mmlu.json", "MIT (MMLU, Hendrycks et al. 2021), A/B form from CAA",
             "MMLU in the A/B layout of the CAA repository"),
            ("truthfulqa", caa / "test" / "truthfulqa" / "truthful_qa.json",
             "Apache-2.0 (TruthfulQA, Lin et al. 2022), A/B form from CAA",
             "TruthfulQA in the A/B layout of the CAA repository")):
        recs = load_contrasts(src)
        sha = write_gz(OUT / f"{name}.json.gz", src.read_text(encoding="utf-8"))
        add(name, f"{name}.json.gz", "test", len(recs), name, lic, source, sha, format="A/B letters (correct)")
        conv, skipped = CONVERSIONS["text"](recs)
        sha = write_gz(OUT / f"{name}-text.json.gz", records_json(conv))
        add(f"{name}-text", f"{name}-text.json.gz", "contrast", len(conv), name, lic,
            source + "; rewritten in free-text form by lrt.data.formats", sha, format="free text (correct)",
            skipped=skipped)

    docs = defaultdict(list)
    with gzip.open(shared / "data" / "natural_text.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs[d["source"]].append(d)
    rng = random.Random(0)
    keep = []
    for source, (strat, n) in TEXT_SAMPLE.items():
        groups = defaultdict(list)
        for d in docs[source]:
            key = d["doc_id"][1] if strat == "category" else d["doc_id"].split("/")[1] if strat == "label" else ""
            groups[key].append(d)
        for key in sorted(groups):
            g = sorted(groups[key], key=lambda d: d["doc_id"])
            rng.shuffle(g)
            keep += g[:n]
    keep.sort(key=lambda d: (d["source"], d["doc_id"]))
    text = "".join(json.dumps({"source": d["source"], "doc_id": d["doc_id"], "text": d["text"]}, ensure_ascii=False)
                   + "\n" for d in keep)
    sha = write_gz(OUT / "text.jsonl.gz", text)
    by = defaultdict(int)
    for d in keep:
        by[d["source"]] += 1
    add("lrt:text", "text.jsonl.gz", "corpus", len(keep), "lrt:text",
        "; ".join(TEXT_LICENCES[s] for s in TEXT_SAMPLE), "a stratified sample of lrt's development corpus (NLTK "
        "data: Brown with its genre categories, movie reviews with their pos/neg labels, ABC news, State of the "
        "Union, inaugural addresses, web text)", sha, documents_by_source=dict(by),
        characters=sum(len(d["text"]) for d in keep))
    (OUT / "index.json").write_text(json.dumps({"format_version": 1, "sets": index}, indent=1, sort_keys=True,
                                               ensure_ascii=False) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{len(index)} sets, {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
