"""Check that two models tokenize identically: same vocabulary (token -> id) and same special tokens."""

from __future__ import annotations

from ..errors import TokenizerMismatchError

_PROBE = "The quick brown fox, naïvely 3.14 ≠ π!\n\tdef f(x): return x**2  # 日本語 🙂"


def _specials(tok) -> dict:
    names = ("bos_token", "eos_token", "unk_token", "pad_token")
    return {n: getattr(tok, n, None) for n in names if getattr(tok, n, None) is not None}


def check_tokenizers(tok_a, tok_b, name_a: str = "source", name_b: str = "target") -> None:
    """Raise :class:`TokenizerMismatchError` unless ``tok_a`` and ``tok_b`` tokenize identically."""
    va, vb = tok_a.get_vocab(), tok_b.get_vocab()
    problems = []
    if len(va) != len(vb):
        problems.append(f"vocabulary sizes differ ({name_a} {len(va)}, {name_b} {len(vb)})")
    if va != vb:
        by_id_a = {i: t for t, i in va.items()}
        by_id_b = {i: t for t, i in vb.items()}
        diffs = [i for i in sorted(set(by_id_a) | set(by_id_b)) if by_id_a.get(i) != by_id_b.get(i)]
        shown = ", ".join(f"id {i}: {by_id_a.get(i)!r} vs {by_id_b.get(i)!r}" for i in diffs[:3])
        problems.append(f"{len(diffs)} token ids differ (first: {shown})")
    sa, sb = _specials(tok_a), _specials(tok_b)
    # pad tokens are often set by the loader; compare the ones both define.
    for key in sorted(set(sa) & set(sb)):
        if key != "pad_token" and sa[key] != sb[key]:
            problems.append(f"{key} differs ({sa[key]!r} vs {sb[key]!r})")
    if not problems and tok_a(_PROBE)["input_ids"] != tok_b(_PROBE)["input_ids"]:
        problems.append("same vocabulary but different encodings of a probe string (merges or normalisation differ)")
    if problems:
        raise TokenizerMismatchError(f"{name_a} and {name_b} do not tokenize identically: " + "; ".join(problems)
                                     + ". Token by token needs one tokenizer (two models of one family); to map "
                                       "across tokenizers pair the positions where both have read the same text: "
                                       "--align chars", option="align")


def pairing(tok_a, tok_b, align: str, name_a: str = "source", name_b: str = "target") -> str:
    """How a harvest pairs the two models' positions: ``"tokens"`` (one tokenizer, checked identical) or
    ``"chars"`` (``align="chars"``: two tokenizers, positions ending at the same character)."""
    if align == "chars":
        return "chars"
    check_tokenizers(tok_a, tok_b, name_a, name_b)
    return "tokens"


def tokenizer_fingerprint(tok) -> str:
    """sha256 of a tokenizer's vocabulary (token → id) and special tokens: equal for tokenizers that encode alike."""
    import hashlib
    import json

    payload = json.dumps([sorted(tok.get_vocab().items()), sorted(_specials(tok).items())], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def same_tokenizer(tok_a, tok_b) -> bool:
    """Whether two tokenizers encode alike (equal :func:`tokenizer_fingerprint`): one harvest position per token."""
    return tok_a is tok_b or tokenizer_fingerprint(tok_a) == tokenizer_fingerprint(tok_b)
