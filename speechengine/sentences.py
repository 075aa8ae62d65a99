"""Splitting text into the pieces a streamed synthesis sends one at a time.

A piece is a sentence; a sentence longer than ``max_chars`` is cut at clause punctuation (, ; : and
dashes), and only where there is none, between words (a single word above the limit is cut
inside). Pieces never lose or reorder text: joined with single spaces they give back the input
with its whitespace collapsed. The first piece has its own, smaller limit because it alone
decides how soon the first audio is ready.
"""

from __future__ import annotations

import re

# Lower-cased words that end with a period without ending a sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf approx dept est fig inc ltd co corp no vol "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun".split()
)
# A sentence ends after . ! ? or an ellipsis, then optional closing quotes or brackets; the
# whitespace after it is the boundary. CJK full stops end a sentence without whitespace.
_SENTENCE_END = re.compile(r"(?:[.!?]+|…)[\"'”’)\]]*(?=\s)|[。！？]+[」』”’)]*")
_CLAUSE_END = re.compile(r"(?:[,;:]|\s[-–—]+)[\"'”’)\]]*(?=\s)|[，；：、]")
_DOTTED = re.compile(r"^(?:\w\.)+\w$")  # U.S, e.g, a.m: dotted abbreviations
_PARAGRAPH = re.compile(r"\n\s*\n")
_SPEAKABLE = re.compile(r"\w")


def _ends_with_abbreviation(text: str) -> bool:
    """True if the period at the end of ``text`` belongs to an abbreviation or an initial."""
    if not text.endswith("."):
        return False
    words = text[:-1].split()
    word = words[-1].lstrip("\"'“‘([").lower() if words else ""
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or bool(_DOTTED.match(word))


def _sentences(paragraph: str) -> list[str]:
    out: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(paragraph):
        candidate = paragraph[start:m.end()]
        if _ends_with_abbreviation(candidate):
            continue
        out.append(candidate)
        start = m.end()
    out.append(paragraph[start:])
    return [s.strip() for s in out if s.strip()]


def _cut(text: str, pattern: re.Pattern[str], limit: int) -> list[str]:
    """Cut ``text`` after matches of ``pattern``, packing as much as fits in ``limit`` chars per part.

    A part with no cut point within the limit runs to the next cut point (the caller cuts it further).
    """
    cuts = [m.end() for m in pattern.finditer(text) if 0 < m.end() < len(text)] + [len(text)]
    parts: list[str] = []
    start = 0
    while start < len(text):
        end = None
        for cut in cuts:
            if cut <= start:
                continue
            if cut - start <= limit or end is None:
                end = cut
            if cut - start > limit:
                break
        parts.append(text[start:end])
        start = end
    return [p.strip() for p in parts if p.strip()]


def _cut_words(text: str, limit: int) -> list[str]:
    parts: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > limit:  # a single "word" longer than the limit: hard cut
            if current:
                parts.append(current)
                current = ""
            parts.append(word[:limit])
            word = word[limit:]
        if current and len(current) + 1 + len(word) > limit:
            parts.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        parts.append(current)
    return parts


def _fit(sentence: str, limit: int) -> list[str]:
    if len(sentence) <= limit:
        return [sentence]
    out: list[str] = []
    for clause in _cut(sentence, _CLAUSE_END, limit):
        out.extend([clause] if len(clause) <= limit else _cut_words(clause, limit))
    return out


def split_text(text: str, max_chars: int = 200, first_max_chars: int = 100) -> list[str]:
    """Split ``text`` into pieces to synthesize one after another, in order.

    Pieces without a letter or digit (a lone "..." or "—") are attached to the piece before them,
    so that no piece is unspeakable. Whitespace runs become single spaces.
    """
    if max_chars < 1 or first_max_chars < 1:
        raise ValueError("piece limits must be positive")
    pieces: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = " ".join(paragraph.split())
        for sentence in _sentences(paragraph):
            parts = _fit(sentence, max_chars)
            if not pieces and len(sentence) > first_max_chars:  # a short first piece: audio starts sooner
                head, *tail = _fit(sentence, first_max_chars)
                parts = [head, *_fit(" ".join(tail), max_chars)] if tail else [head]
            for piece in parts:
                if pieces and not _SPEAKABLE.search(piece):
                    pieces[-1] = f"{pieces[-1]} {piece}"
                else:
                    pieces.append(piece)
    if len(pieces) > 1 and not _SPEAKABLE.search(pieces[0]):
        pieces[1] = f"{pieces[0]} {pieces[1]}"
        del pieces[0]
    return pieces
