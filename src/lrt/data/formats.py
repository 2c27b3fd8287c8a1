"""One behaviour, several answer formats: A/B contrasts rewritten as Yes/No, persona-style and free-text items.

A steering vector lives in the format it was computed in. These conversions turn a CAA-style A/B record
(``question`` ending in the options ``(A) …`` / ``(B) …``, the matching and non-matching letters) into:

- **Yes/No** (:func:`to_yes_no`): the question, one of its two answers proposed, "Would you give this answer?";
  the matching answer is " Yes" when the proposed option is the matching one, else " No" (alternating, so the
  answer word is balanced);
- **persona** (:func:`to_persona`): "Is the following statement something you would say?" with one option as
  the statement and the choices "(A) Yes (B) No" in alternating order (the layout of Anthropic's persona evals).
  Where the options are answers rather than statements ("Yes", "Agree", "$100 now": they mean nothing without
  their question, and the same text is the matching answer to one question and the other to the next), the
  statement is the question with the option as its answer — "QUESTION / My answer: OPTION" inside the quotes, so
  the layout stays the persona evals' — and a set is rewritten one way throughout (:func:`options_are_statements`);
- **free text** (:func:`to_free_text`): the question without its options, answered by the two options' own
  text (the answer token is the first token where they differ).

Each returns :class:`~lrt.data.contrasts.Contrast` records, in the source order; records whose options cannot
be parsed, or whose two answers are the same text, are left out (the count is returned).
"""

from __future__ import annotations

from .contrasts import Contrast, split_options

PERSONA_QUESTION = "Is the following statement something you would say?"
PERSONA_ANSWER = "My answer:"   # where the statement is a question and one of its options
STATEMENT_WORDS = 5      # an option this long or longer reads as a statement on its own
STATEMENT_SHARE = 0.9    # ... and a set is made of statements when this share of its options are
YES_NO_QUESTION = "Would you give this answer? Answer Yes or No."


def _answers(c: Contrast) -> tuple[str, str, str] | None:
    """``(stem, matching text, non-matching text)`` of an A/B contrast."""
    parts = split_options(c.prompt)
    pos, neg = c.positive.strip(), c.negative.strip()
    if parts is None or {pos, neg} != {"(A)", "(B)"}:
        return None
    stem, a, b = parts
    match, other = (a, b) if pos == "(A)" else (b, a)
    return (stem, match, other) if match != other else None


def _convert(records: list[Contrast], make) -> tuple[list[Contrast], int]:
    """``make(k, stem, matching text, other text)`` for each parsable record (``k`` counts the kept ones); a record
    it cannot parse, or for which ``make`` returns None, is skipped."""
    out, skipped = [], 0
    for c in records:
        got = _answers(c)
        made = None if got is None else make(len(out), *got)
        if made is None:
            skipped += 1
        else:
            out.append(made)
    return out, skipped


def _yes_no(k: int, stem: str, match: str, other: str) -> Contrast:
    proposes_match = k % 2 == 0
    prompt = f'{stem}\n\nProposed answer: "{match if proposes_match else other}"\n\n{YES_NO_QUESTION}'
    return Contrast(prompt, " Yes" if proposes_match else " No", " No" if proposes_match else " Yes")


def options_are_statements(records: list[Contrast]) -> bool:
    """Whether a set's options stand alone as statements: at least ``STATEMENT_SHARE`` of the parsable records'
    options have ``STATEMENT_WORDS`` words or more. CAA's hallucination and refusal sets do (99.6–100%); the other
    five answer their questions ("Yes" / "No", "Agree" / "Disagree", "A donut now"; 5–59%)."""
    opts = [t for c in records if (got := _answers(c)) for t in got[1:]]
    return bool(opts) and sum(len(t.split()) >= STATEMENT_WORDS for t in opts) >= STATEMENT_SHARE * len(opts)


def _persona(k: int, stem: str, match: str, other: str, keep_question: bool = False) -> Contrast:
    statement, yes_matches = (match, True) if k % 2 == 0 else (other, False)
    yes_first = (k // 2) % 2 == 0
    choices = "(A) Yes\n(B) No" if yes_first else "(A) No\n(B) Yes"
    yes, no = ("(A)", "(B)") if yes_first else ("(B)", "(A)")
    if keep_question:
        statement = f"{stem}\n{PERSONA_ANSWER} {statement}"
    prompt = f'{PERSONA_QUESTION}\n"{statement}"\n\nChoices:\n{choices}'
    return Contrast(prompt, yes if yes_matches else no, no if yes_matches else yes)


def to_yes_no(records: list[Contrast]) -> tuple[list[Contrast], int]:
    """Yes/No form; record ``k`` proposes the matching answer when ``k`` is even (answer " Yes"), else the other."""
    return _convert(records, _yes_no)


def to_persona(records: list[Contrast], keep_question: bool | None = None) -> tuple[list[Contrast], int]:
    """Persona form: the statement is the matching option for even ``k`` (matching answer: Yes), else the other
    (matching answer: No); Yes is option (A) for ``k // 2`` even, else (B), so letter and answer are balanced.

    ``keep_question``: the statement is the question and the option as its answer ("QUESTION / My answer:
    OPTION": the option is an answer, not a statement);
    ``None`` decides by :func:`options_are_statements` on ``records`` (pass the generate set's decision to its
    test set, so both parts read alike)."""
    if keep_question is None:
        keep_question = not options_are_statements(records)
    return _convert(records, lambda k, stem, match, other: _persona(k, stem, match, other, keep_question))


def to_free_text(records: list[Contrast]) -> tuple[list[Contrast], int]:
    """Free-text form: the stem alone, answered by the matching vs the non-matching option's text. A record where
    one answer is the start of the other ("1 tall violet: 1 tall white" against "1 tall violet: 1 tall white: 1
    dwarf violet: 1 dwarf white") has no token where the two answers part, and is left out."""
    return _convert(records, lambda k, stem, match, other: None if match.startswith(other) or
                    other.startswith(match) else Contrast(stem, " " + match, " " + other))


CONVERSIONS = {"yesno": to_yes_no, "persona": to_persona, "text": to_free_text}
