"""Built-in concepts from labelled natural text: sentiment (movie reviews) and Brown genres.

A concept gives a :class:`TextContrast` (texts on each side, from a corpus' documents) and, for sentiment,
evaluation items: neutral prompts and held-out review openings, scored by log p(positive words) −
log p(negative words) for the next token.
"""

from __future__ import annotations

import random
import re

from .corpus import iter_documents
from ..errors import DatasetError
from .contrasts import Item, TextContrast, word_items

POSITIVE_WORDS = [" good", " great", " excellent", " wonderful", " best", " perfect", " fun", " beautiful",
                  " brilliant", " enjoyable", " funny", " amazing"]
NEGATIVE_WORDS = [" bad", " awful", " terrible", " worst", " boring", " stupid", " dull", " poor", " waste",
                  " mess", " horrible", " lame"]
NEUTRAL_PROMPTS = ["The movie was", "This book is", "I think the film is", "The food at this restaurant was",
                   "Overall, the show was", "My day was", "The new album is", "The hotel was", "The game was",
                   "In my opinion, the story is", "The concert last night was", "This product is",
                   "The weather today is", "The ending of the film was", "Her performance was", "The plot is"]


def _select(corpus: str, pattern: str, split: str | None, limit: int, seed: int, field: str = "doc_id"
            ) -> list[tuple[str, str]]:
    """``(text, doc_id)`` of up to ``limit`` documents of ``split`` whose ``field`` matches, in a seeded order."""
    rx = re.compile(pattern)
    docs = [(d["text"], str(d.get("doc_id", ""))) for d in iter_documents(corpus, split)
            if rx.search(str(d.get(field, "")))]
    random.Random(seed).shuffle(docs)
    return docs[:limit]


def concept_texts(concept: str, corpus: str, split: str | None = "train", limit: int = 200,
                  seed: int = 0) -> TextContrast:
    """``sentiment``: positive vs negative movie reviews; ``genre:X:Y``: Brown genre X vs Y (letters a–r)."""
    if concept == "sentiment":
        pos = _select(corpus, r"(^|/)pos/", split, limit, seed)
        neg = _select(corpus, r"(^|/)neg/", split, limit, seed + 1)
    elif concept.startswith("genre:"):
        try:
            _, a, b = concept.split(":")
        except ValueError:
            raise DatasetError(f"genre concept must be genre:X:Y with Brown category letters, got {concept!r}") from None
        pos = _select(corpus, rf"^c{a}\d", split, limit, seed)
        neg = _select(corpus, rf"^c{b}\d", split, limit, seed + 1)
    else:
        raise DatasetError(f"unknown concept {concept!r}; use sentiment or genre:X:Y, or give contrast data")
    if not pos or not neg:
        raise DatasetError(f"corpus {corpus!r} has no documents for concept {concept!r} in split {split!r} "
                           f"({len(pos)} positive, {len(neg)} negative); use ../shared/data/natural_text.jsonl.gz")
    return TextContrast(positive=[t for t, _ in pos], negative=[t for t, _ in neg], name=concept,
                        sources=[i for _, i in pos + neg], origin={"corpus": str(corpus), "split": split})


def review_prompts(corpus: str, split: str | None = "heldout", limit: int = 40, words: int = 40, seed: int = 0,
                   suffix: str = " overall , the movie is") -> list[tuple[str, str]]:
    """``(prompt, doc_id)``: openings of (held-out) movie reviews, cut after ``words`` words, ending in a neutral
    lead-in."""
    docs = _select(corpus, r"(^|/)(pos|neg)/", split, limit, seed)
    return [(" ".join(t.split()[:words]) + suffix, i) for t, i in docs]


def sentiment_items(tokenizer, corpus: str | None = None, lowercase: bool = False, n_reviews: int = 40,
                    split: str | None = "heldout", seed: int = 0) -> list[Item]:
    """Neutral prompts (+ held-out review openings when a corpus is given), scored on sentiment words."""
    prompts = [p.lower() for p in NEUTRAL_PROMPTS] if lowercase else list(NEUTRAL_PROMPTS)
    sources = [""] * len(prompts)
    if corpus and n_reviews:
        reviews = review_prompts(corpus, split, n_reviews, seed=seed)
        prompts += [p for p, _ in reviews]
        sources += [i for _, i in reviews]
    return word_items(tokenizer, prompts, POSITIVE_WORDS, NEGATIVE_WORDS, sources)


def neutral_sequences(tokenizer, corpus: str, n: int = 8, length: int = 64) -> list[list[int]]:
    """Token sequences of non-review text (the first ``length`` tokens of ``n`` documents), for the KL side effect."""
    out = []
    for d in iter_documents(corpus):
        if d.get("source") == "movie_reviews":
            continue
        ids = tokenizer(d["text"], verbose=False)["input_ids"]
        if len(ids) >= length:
            out.append(ids[:length])
        if len(out) == n:
            break
    return out
