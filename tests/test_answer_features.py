"""The answer stage's lexical helpers: the keys that group equal answers, and the numbers conflicts compare."""

from __future__ import annotations

from qa.answer import answer_key, numeric_values


def test_answer_keys_group_spelling_variants_and_number_forms():
    assert answer_key("Hezbollah") == answer_key("Hizbollah")
    assert answer_key("18-day") == answer_key("18 days")
    assert answer_key("94,000") == answer_key("94000")
    assert answer_key("Aleppo") != answer_key("Qusayr")


def test_numbers_are_read_from_digits_and_words():
    assert numeric_values("94,000 people") == {94000.0}
    assert numeric_values("three weeks") == {3.0}
    assert numeric_values("the rebels") == set()
