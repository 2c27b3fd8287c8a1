"""The mean over A/B items that a preference for one letter (or one answer word, Yes/No) cannot move (used by CAA
vectors and the evaluation)."""

from __future__ import annotations

from collections import Counter

import torch

MIN_GROUP = 3
"""Each direction of an answer pair needs at least this many items for the pair to count (else it is left out)."""

MIN_MEANING_SHARE = 0.25
"""Options' texts are balanced as a factor only where each is the matching answer on at least this share of the
items that offer both."""


def answer_key(item) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(matching answer tokens, other answer tokens) of an item: ``((A,), (B,))`` for "A matches, B does not"."""
    return tuple(getattr(item, "positive", None) or ()), tuple(getattr(item, "negative", None) or ())


def answer_meaning(item) -> tuple[str, str] | None:
    """(matching option's text, other option's text), normalised, of an item whose answers are option letters (the
    prompt lists "(A) …" and "(B) …"); None otherwise."""
    got = getattr(item, "answers", None)
    if not got:
        return None
    return tuple(" ".join(t.lower().split()).strip(" .!") for t in got)


def _answer_counts(items) -> tuple[list, dict]:
    """Each item's :func:`answer_key`, and how many items have each key (in order of first appearance)."""
    keys = [answer_key(it) for it in items]
    return keys, Counter(keys)


def _mirrored(counts: dict) -> list:
    """The answer pairs that count: "A against B" with "B against A", each with at least MIN_GROUP items."""
    return [k for k in counts if counts[k] >= MIN_GROUP and counts.get((k[1], k[0]), 0) >= MIN_GROUP and k[0] != k[1]]


def _two_meanings(meanings: list) -> tuple[str, str] | None:
    """The two option texts that recur as the matching answer *and* as the other one (at least MIN_GROUP items
    each way, and each the matching one on at least :data:`MIN_MEANING_SHARE` of the items between them), e.g.
    ("yes", "no") on persona items; None where the options are each item's own text (CAA A/B), or where one text
    is nearly always the matching one (corrigible-neutral-HHH: "Yes" on 27 of its 31 Yes/No pairs) — the answer's
    meaning is then the behaviour, not a nuisance to balance."""
    pairs = [m for m in meanings if m is not None]
    match = {v: sum(1 for m in pairs if m[0] == v) for v in dict.fromkeys(m[0] for m in pairs)}
    other = {v: sum(1 for m in pairs if m[1] == v) for v in match}
    rec = sorted((v for v in match if match[v] >= MIN_GROUP and other[v] >= MIN_GROUP),
                 key=lambda v: -min(match[v], other[v]))
    if len(rec) < 2:
        return None
    a, b = rec[:2]
    between = sum(1 for m in pairs if set(m) == {a, b})
    if min(match[a], match[b]) < MIN_MEANING_SHARE * between:
        return None
    return a, b


def _design(items) -> tuple[list, list[list], tuple[str, str] | None]:
    """Each item's cell, the designs that count (lists of cells; every cell of every design weighs alike), and the
    answer meanings balanced (or None).

    A cell is ``(answer pair, meaning)``: the item's (matching, other) answer tokens and, where the options' texts
    recur — persona items: "(A) Yes (B) No" in alternating order — which of the two texts the matching answer is
    (else None). One design per mirrored answer pair, in which *every* factor flips as often as it stays: its
    two directions; with meanings, all four of (A matches, B matches) × (Yes matches, No matches) when each has
    MIN_GROUP items, else the better diagonal (A-Yes with B-No, or A-No with B-Yes: letter *and* meaning flip
    together); if some pair has neither, meanings are not balanced at all (letters only). Items of the same pair
    whose options have their own text (a CAA set mixing "(A) Yes (B) No" with sentence options) add their two
    directions to the design. Then a preference for a letter *or* for a meaning cancels."""
    keys, counts = _answer_counts(items)
    letters = [k for k in _mirrored(counts) if k < (k[1], k[0])]           # one per mirrored pair
    plain = [(k, None) for k in keys]
    letter_designs = [[(k, None), ((k[1], k[0]), None)] for k in letters]
    meanings = [answer_meaning(it) for it in items]
    two = _two_meanings(meanings)
    if two is None:
        return plain, letter_designs, None
    cells = [(k, m[0] if m is not None and set(m) == set(two) else None) for k, m in zip(keys, meanings)]
    n = Counter(cells)
    a, b = two
    designs = []
    for k in letters:
        mk = (k[1], k[0])
        full = [(k, a), (k, b), (mk, a), (mk, b)]
        diag = max(([(k, a), (mk, b)], [(k, b), (mk, a)]), key=lambda d: min(n[c] for c in d))
        rest = [(k, None), (mk, None)]           # options with their own text: only the letter to balance
        if all(n[c] >= MIN_GROUP for c in full):
            design = full
        elif all(n[c] >= MIN_GROUP for c in diag):
            design = diag
        elif sum(n[c] for c in full) < MIN_GROUP:
            design = []
        else:
            return plain, letter_designs, None      # this pair cannot be balanced for meaning: letters only
        design += rest if all(n[c] >= MIN_GROUP for c in rest) else []
        if design:
            designs.append(design)
    return cells, designs, two


class Balance:
    """How a mean over items is taken. A/B sets ask for letter A as the matching answer on some items and letter B on
    others, rarely half and half; a vector (or the unsteered model) that merely prefers one letter then moves the
    plain mean by (share of A − share of B) × that preference — forward on one item set, *backward* on another.

    With ``on``, items are grouped by their (matching, other) answer pair, and only *mirrored* groups count: "A
    against B" together with "B against A", each direction with at least :data:`MIN_GROUP` items. Each direction's
    mean weighs alike, so a preference for any one answer cancels exactly. An item whose pair has no mirror (a
    third option, "(C) against (A)", on 3 of 60 pairs) is left out (recorded): its difference is mostly the letter,
    "C rather than A", and weighing its group like the others made a survival-instinct CAA vector a pure "say C"
    direction (15× the behaviour's norm) that steered A-matching items backwards. No mirrored pair (free-text
    answers, word sets): the plain mean over all items.

    Where the options' texts recur (persona items: a statement, then "(A) Yes (B) No" in alternating order), the
    *meaning* of the matching answer is a second factor: on Qwen2.5-Coder-1.5B (layer 17, refusal in persona form)
    the mean difference of Yes-matching pairs and that of No-matching pairs have cosine −0.99, and their common
    part (the behaviour) is 1/8 of the "say Yes" part. Cells are then (answer pair × matching meaning), weighed
    alike (:func:`_design`), so neither a letter nor a Yes/No preference moves the mean."""

    def __init__(self, items=(), on: bool = True):
        cells, designs, two = _design(list(items))
        kept = [c for d in designs for c in d]
        self.on = on and len(kept) >= 2
        self.meanings = list(two) if self.on and two else None
        self.groups = len(kept) if self.on else 1
        self.labels = torch.tensor([kept.index(c) if c in kept else self.groups for c in cells] if self.on
                                   else [0] * len(cells), dtype=torch.long)
        counts = Counter(cells)
        self.counts = {_cell_name(c): n for c, n in counts.items()}
        self.cell_names = [_cell_name(c) for c in cells]       # each item's, as in counts
        self.left_out = sum(n for c, n in counts.items() if c not in kept) if self.on else 0

    def mean(self, p: torch.Tensor) -> torch.Tensor:
        """The mean over the last dimension (items)."""
        if not self.on:
            return p.mean(-1)
        return self.resampled(p, torch.arange(p.shape[-1])[None])[..., 0]

    def resampled(self, p: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """``[..., B]``: the mean of ``p[..., idx[b]]`` for each resample ``b`` of ``idx [B, N]``."""
        if not self.on:
            return p[..., idx].mean(-1)
        onehot = torch.nn.functional.one_hot(self.labels[idx], self.groups + 1)[..., :self.groups].to(p.dtype)
        sums = torch.einsum("...bn,bng->...bg", p[..., idx], onehot)
        counts = onehot.sum(1)                                                               # [B, G]
        present = (counts > 0).to(p.dtype)
        return (sums / counts.clamp_min(1) * present).sum(-1) / present.sum(-1).clamp_min(1)

    @property
    def cells(self) -> torch.Tensor:
        """Each item's cell (``0 … groups − 1``; ``−1`` for an item left out; all 0 when not balanced), for
        :func:`centre_cells`."""
        return torch.where(self.labels < self.groups, self.labels, torch.full_like(self.labels, -1))

    def record(self) -> dict:
        rule = ("plain mean" if not self.on else "mirrored answer pairs, each direction alike" if not self.meanings
                else f"mirrored answer pairs × matching answer {' / '.join(self.meanings)}, each cell alike")
        return {"balanced": self.on, "items_per_answer_pair": self.counts, "left_out": self.left_out,
                "answer_meanings": self.meanings, "rule": rule}


def centre_cells(d: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """The rows of ``d [N, D]`` (one per item) of the items with a cell (``cells >= 0``, :attr:`Balance.cells`),
    each cell's mean replaced by the mean of the cell means (the balanced mean). What a letter or a Yes/No
    preference adds to a cell goes; what the cells share (the behaviour) and each item's own variation stay; the
    rows' mean is the balanced mean. One cell: ``d`` as is."""
    kept = cells >= 0
    lab, x = cells[kept], d[kept].double()
    groups = int(lab.max()) + 1 if len(lab) else 0
    sums = torch.zeros(groups, d.shape[1], dtype=x.dtype).index_add_(0, lab, x)
    counts = torch.bincount(lab, minlength=groups).to(x.dtype)
    means = sums / counts.clamp_min(1)[:, None]
    return (x - means[lab] + means[counts > 0].mean(0)).to(d.dtype)


STABLE_SPLIT_HALF = 0.5
"""Split-half cosine below which a vector (CAA pairs or texts) is called unstable. On the Qwen pair (60 pairs,
L14 → L17, docs/real-pair.md) the 11 pool vectors below it had measured cos(A·v, native) 0.24–0.95 (median 0.53),
the 22 above 0.14–0.98 (median 0.83); Spearman 0.74 over all 33. ``lrt steer`` and ``lrt transfer`` warn below it;
``lrt study`` takes more pairs while a vector is below it (``--max-pairs``)."""


def split_half_cos(d: torch.Tensor, cells: torch.Tensor) -> float | None:
    """How stable the balanced mean of the rows ``d [N, D]`` is: the cosine between the balanced means of two
    halves, each cell's items dealt to the halves in turn (None with fewer than two items in some cell). Near 1 the
    pairs agree on a direction; near 0 (or below) the mean is mostly the pairs' own noise. On the Qwen pair it
    ranks how well the map carries a vector (Spearman 0.74 with the measured cos(A·v, native) over the 33 pool sets'
    vectors, left out of the map; the map's own outlook 0.24: docs/real-pair.md)."""
    kept = cells >= 0
    first = torch.zeros_like(kept)
    for c in cells[kept].unique():
        idx = (cells == c).nonzero().squeeze(1)
        if len(idx) < 2:
            return None
        first[idx[::2]] = True
    a, b = (centre_cells(d[m], cells[m]).double().mean(0) for m in (first & kept, ~first & kept))
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def _cell_name(c) -> str:
    """``"[5]|[11]"`` for a cell without a meaning, ``"[5]|[11] yes"`` with one."""
    (p, n), m = c
    return f"{list(p)}|{list(n)}" + (f" {m}" if m else "")


def balanced_pick(items: list, n: int) -> list:
    """``n`` items, in their order, taken in turn from the cells of the commonest mirrored answer pair ("A against
    B", "B against A"; on persona items also × Yes / No matching) so that the balanced mean can use all of them;
    the plain first ``n`` where the items have no mirrored pair. (The next 12 unused pairs of survival-instinct's
    generate set are 11 A-matching and 1 B-matching: the balanced mean then falls back to the plain one and a
    letter preference looks like steering.)"""
    return [items[i] for i in balanced_pick_indices(items, n)]


def balanced_pick_indices(items: list, n: int) -> list[int]:
    """The positions in ``items`` (ascending) of :func:`balanced_pick`'s choice: round robin over the cells of the
    commonest mirrored answer pair's design (its two directions; with meanings, up to four cells)."""
    cells, designs, _ = _design(items)
    if not designs:                       # no direction has MIN_GROUP items yet: any pair seen both ways
        keys, counts = _answer_counts(items)
        pairs = [k for k in counts if k[0] != k[1] and (k[1], k[0]) in counts]
        if not pairs:
            return list(range(min(n, len(items))))
        top = max(pairs, key=lambda k: (min(counts[k], counts[(k[1], k[0])]), counts[k] + counts[(k[1], k[0])]))
        designs = [[(top, None), ((top[1], top[0]), None)]]
    size = Counter(cells)
    top = max(designs, key=lambda d: (min(size[c] for c in d), sum(size[c] for c in d)))
    queues = [[i for i, c in enumerate(cells) if c == d] for d in top]
    picked: list[int] = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    return sorted(picked)
