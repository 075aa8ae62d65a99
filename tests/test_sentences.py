"""Unit tests of the text splitter that feeds streamed synthesis."""

from __future__ import annotations

import pytest

from speechengine.sentences import split_text


def rejoined(pieces: list[str]) -> str:
    return " ".join(pieces)


def test_sentences_become_pieces_in_order():
    text = "Hello there. How are you? I am fine! Thanks…  See you."
    assert split_text(text) == ["Hello there.", "How are you?", "I am fine!", "Thanks…", "See you."]


def test_abbreviations_initials_and_decimals_do_not_end_a_sentence():
    text = "Mr. Smith met Dr. Jones at 5 p.m. in the U.S. office. Pi is 3.14 today. J. F. Kennedy spoke."
    assert split_text(text) == [
        "Mr. Smith met Dr. Jones at 5 p.m. in the U.S. office.", "Pi is 3.14 today.", "J. F. Kennedy spoke.",
    ]


def test_closing_quotes_stay_with_their_sentence():
    assert split_text('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]


def test_paragraph_break_ends_a_piece_even_without_punctuation():
    assert split_text("A heading\n\nThe body text.") == ["A heading", "The body text."]
    assert split_text("one line\nwrapped here.") == ["one line wrapped here."]  # a single newline is a space


def test_long_sentence_is_cut_at_clauses_then_words():
    clause = "this clause has exactly forty characters"  # 40 chars
    text = ", ".join([clause] * 6) + "."
    pieces = split_text(text, max_chars=90, first_max_chars=90)
    assert all(len(p) <= 90 for p in pieces)
    assert all(p.endswith((",", ".")) for p in pieces)  # cut after clause punctuation, not mid-clause
    assert len(pieces) == 3
    assert rejoined(pieces) == text


def test_unpunctuated_run_is_cut_between_words_and_huge_words_hard():
    words = " ".join(f"word{i}" for i in range(60))
    pieces = split_text(words, max_chars=50, first_max_chars=50)
    assert all(len(p) <= 50 for p in pieces) and rejoined(pieces) == words
    assert split_text("x" * 120, max_chars=50, first_max_chars=50) == ["x" * 50, "x" * 50, "x" * 20]


def test_first_piece_has_its_own_smaller_limit():
    text = ("First part of a long opening sentence, second part of it, third part that goes on, "
            "and the end of it. Next sentence.")
    pieces = split_text(text, max_chars=200, first_max_chars=40)
    assert len(pieces[0]) <= 40
    assert pieces[-1] == "Next sentence."
    assert all(len(p) <= 200 for p in pieces[1:]) and len(pieces) <= 4
    assert rejoined(pieces) == text


def test_unspeakable_pieces_join_a_neighbour():
    assert split_text("... Hello there. ... — Bye.") == ["... Hello there. ...", "— Bye."]
    assert split_text("...") == ["..."]


def test_cjk_full_stops_split_without_spaces():
    assert split_text("你好。今天天气很好！是吗？") == ["你好。", "今天天气很好！", "是吗？"]


def test_whitespace_only_gives_no_pieces():
    assert split_text("  \n\t ") == []


@pytest.mark.parametrize("text", [
    "A. B. C. d e f. G!", "Ends without punctuation", "Trailing spaces.   ", "?!?! wow. ok",
    "Numbers 1. 2. 3. and lists; items: one, two — three.",
])
def test_nothing_is_lost_or_reordered(text):
    # limits above the longest word: no word is hard-cut, so the pieces rejoin exactly
    assert rejoined(split_text(text, max_chars=14, first_max_chars=12)) == " ".join(text.split())
