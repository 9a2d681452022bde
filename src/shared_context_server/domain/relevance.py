"""How well a search query matches a text, word by word, forgiving typos: 0 to 100.

Scoring a whole query against a whole message (RapidFuzz WRatio) punishes length: once a
message is 8x longer than the query, even an exact hit is scaled down to 60, and any typo
falls below it. Here each query word is matched against the message's words instead, so a
message's length does not matter, only whether it holds the query's words:

- a query word's score is the RapidFuzz ``ratio`` (normalised Indel similarity) with its
  closest word in the text, or, for query words of PREFIX_MIN_CHARS or more, with the start
  of a longer word ("auth" in "authentication"), a little below a whole-word match;
- a word whose best match is under WORD_FLOOR counts as absent (0): words that merely share
  a few letters are noise, not evidence;
- the query's score is the mean of its words' scores, each weighted by its length, so a typo
  in one long word costs a few points and "the" weighs less than "invalidation".

100 means every query word is in the text as written; in an 8-letter word, a letter missing
or one too many scores about 94, a wrong letter or two neighbours swapped about 88. Case and
accents never count ("ZURICH" matches "Zürich").

Pure functions; RapidFuzz's C routines do the comparisons, each distinct word of all texts
once per query word.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass

from rapidfuzz import fuzz, process, utils

# Below this a word's best match counts as no match: unrelated words of similar length
# often share half their letters (ratio 40-60); a one-letter slip in a 4-letter word is 75.
WORD_FLOOR = 70.0
# Query words at least this long also match the start of a longer word; a prefix match
# scores PREFIX_BASE of its ratio, plus the rest in proportion to how much of the word the
# query covers ("postmort" in "postmortem": 97; "auth" in "authentication": 89).
PREFIX_MIN_CHARS = 3
PREFIX_BASE = 0.85
# Combining marks (accents) dropped after NFKD decomposition: é -> e, ü -> u.
_NO_MARKS = (
    {c: None for c in range(0x300, 0x370)}
    | {c: None for c in range(0x1AB0, 0x1B00)}
    | {c: None for c in range(0x1DC0, 0x1E00)}
)


def normalise(text: str) -> str:
    """Lower case, accents dropped, every run of non-alphanumerics one space."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).translate(_NO_MARKS)
    return utils.default_process(text)


def words(text: str) -> list[str]:
    """The words a text is matched on (see ``normalise``)."""
    return normalise(text).split()


@dataclass(frozen=True, slots=True)
class Query:
    """A query's distinct words, with the weight of each (its length)."""

    words: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> Query:
        return cls(tuple(dict.fromkeys(words(text))))

    @property
    def total_weight(self) -> int:
        return sum(len(w) for w in self.words)


def _prefix_scores(word: str, vocabulary: Sequence[str]) -> dict[str, float]:
    """Vocabulary words longer than ``word`` whose start is spelled like it."""
    n = len(word)
    longer = [v for v in vocabulary if len(v) > n]
    found = process.extract(
        word,
        [v[:n] for v in longer],
        scorer=fuzz.ratio,
        processor=None,
        score_cutoff=WORD_FLOOR,
        limit=None,
    )
    scores: dict[str, float] = {}
    for _, similarity, index in found:
        full = longer[index]
        scores[full] = similarity * (PREFIX_BASE + (1 - PREFIX_BASE) * n / len(full))
    return scores


def word_scores(word: str, vocabulary: Sequence[str]) -> dict[str, float]:
    """Each vocabulary word that matches ``word`` (at least WORD_FLOOR), with its score."""
    found = process.extract(
        word, vocabulary, scorer=fuzz.ratio, processor=None, score_cutoff=WORD_FLOOR, limit=None
    )
    scores = {vocabulary[index]: similarity for _, similarity, index in found}
    if len(word) >= PREFIX_MIN_CHARS:
        for term, score in _prefix_scores(word, vocabulary).items():
            if score >= WORD_FLOOR and score > scores.get(term, 0.0):
                scores[term] = score
    return scores


class Matcher:
    """One query, matched against many texts: the query's words are compared with each
    distinct word of all the texts once, then each text's score is a few set lookups."""

    def __init__(self, query: Query, vocabulary: Iterable[str]) -> None:
        """``vocabulary``: every distinct word of the texts to be scored."""
        self._query = query
        known = list(vocabulary)
        self._scores = [word_scores(w, known) for w in query.words]
        self._keys = [set(s) for s in self._scores]

    def score(self, present: Set[str]) -> float:
        """0-100: the length-weighted mean of each query word's best match in the text
        whose distinct words are ``present``."""
        total = self._query.total_weight
        if not total:
            return 0.0
        earned = 0.0
        for word, scores, keys in zip(self._query.words, self._scores, self._keys, strict=True):
            hits = keys & present
            if hits:
                earned += len(word) * max(scores[h] for h in hits)
        return earned / total


def score(query: str, text: str) -> float:
    """The score of one text for one query (see ``Matcher`` for many)."""
    present = set(words(text))
    return Matcher(Query.of(query), present).score(present)
