"""The answer stage's lexical helpers: the keys that group equal answers, and the numbers conflicts compare."""

from __future__ import annotations

from qa.answer import answer_key, numeric_values, trim_appositive
from qa.reader import Span


def test_answer_keys_group_spelling_variants_and_number_forms():
    assert answer_key("Hezbollah") == answer_key("Hizbollah")
    assert answer_key("18-day") == answer_key("18 days")
    assert answer_key("94,000") == answer_key("94000")
    assert answer_key("Aleppo") != answer_key("Qusayr")


def test_numbers_are_read_from_digits_and_words():
    assert numeric_values("94,000 people") == {94000.0}
    assert numeric_values("three weeks") == {3.0}
    assert numeric_values("the rebels") == set()


def test_a_span_is_cut_at_a_spaced_dash_but_a_number_range_is_kept():
    text = "Saudi Arabia, Qatar and Turkey - Sunni powers"
    trimmed = trim_appositive(Span(10, 10 + len(text), text, 5.0, 0.5))
    assert (trimmed.text, trimmed.start, trimmed.end) == ("Saudi Arabia, Qatar and Turkey", 10, 40)
    assert trim_appositive(Span(0, 11, "1990 – 2000", 1.0, 0.1)).text == "1990 – 2000"
    assert trim_appositive(Span(0, 17, "£25,000 - £28,000", 1.0, 0.1)).text == "£25,000 - £28,000"
    assert trim_appositive(Span(0, 19, "80,000 - a UN count", 1.0, 0.1)).text == "80,000"
    assert trim_appositive(Span(0, 15, "Jabhat al-Nusra", 1.0, 0.1)).text == "Jabhat al-Nusra"
    assert trim_appositive(Span(0, 9, "- Qusayr", 1.0, 0.1)).text == "- Qusayr"
