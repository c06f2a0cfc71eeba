"""Answer types, list shapes and quantities: small real cases from the seeds and SQuAD-like questions."""

import pytest

from qa.answer_types import (
    durations_in_days,
    list_around,
    list_items,
    numbers_in,
    quantities_disagree,
    question_shape,
    span_shape,
    type_features,
)


@pytest.mark.parametrize(
    ("question", "kind", "wants_list"),
    [
        ("How long was the fight for Qusayr?", "duration", False),
        ("How many days did the battle for Qusayr take?", "count", False),
        ("Who backed the rebels?", "person", True),
        ("Which two countries backed the rebels?", "entity", True),
        ("Which country backed the rebels?", "entity", False),
        ("What year did the battle take place?", "date", False),
        ("When did Qusayr fall?", "date", False),
        ("Where is Qusayr?", "place", False),
        ("Why did the rebels withdraw?", "reason", False),
        ("What is the death toll?", "other", False),
    ],
)
def test_question_shape(question, kind, wants_list):
    shape = question_shape(question)
    assert (shape.kind, shape.wants_list) == (kind, wants_list)


def test_which_question_keeps_its_head_noun():
    assert question_shape("Which countries supplied the rebels?").head == "countries"


@pytest.mark.parametrize(
    ("span", "days"),
    [("an 18-day battle", {18.0}), ("three weeks of bitter fighting", {21.0}), ("18 days", {18.0}),
     ("a month", {30.44}), ("two years", {730.5}), ("long", set()), ("80,000", set())],
)
def test_durations_are_normalised_to_days(span, days):
    assert durations_in_days(span) == days


def test_numbers_are_scaled():
    assert numbers_in("80,000") == {80000.0}
    assert numbers_in("1.5 million") == {1_500_000.0}
    assert numbers_in("three") == {3.0}


def test_the_battle_length_disagreement_is_seen_beyond_bare_numbers():
    assert quantities_disagree("an 18-day battle", "three weeks of bitter fighting")
    assert not quantities_disagree("an 18-day battle", "18 days")
    assert quantities_disagree("80,000", "94,000")
    assert not quantities_disagree("three weeks", "80,000")  # a duration and a count are not comparable


def test_list_shape():
    assert list_items("Saudi Arabia, Qatar and Turkey") == ["Saudi Arabia", "Qatar", "Turkey"]
    assert list_items("June 5, 2013") == ["June 5, 2013"]
    assert span_shape("Saudi Arabia, Qatar and Turkey")["is_list"] == 1.0
    assert span_shape("Saudi Arabia, Qatar and Turkey")["cap_ratio"] == 1.0


def test_type_features_tell_the_right_shape_from_the_wrong_one():
    how_long = question_shape("How long was the fight for Qusayr?")
    assert type_features(how_long, "long") == {"type_match": 0.0, "type_mismatch": 1.0, "list_match": 0.0,
                                               "number_match": 0.0, "number_mismatch": 1.0}
    assert type_features(how_long, "an 18-day battle")["number_match"] == 1.0
    who = question_shape("Who backed the rebels?")
    assert type_features(who, "Saudi Arabia, Qatar and Turkey") == {
        "type_match": 1.0, "type_mismatch": 0.0, "list_match": 1.0, "number_match": 0.0, "number_mismatch": 0.0}
    assert type_features(who, "because the rebels")["type_mismatch"] == 1.0
    assert type_features(who, "because the rebels")["number_mismatch"] == 0.0  # "who" is not a number question
    how_many = question_shape("How many days did the battle for Qusayr take?")
    assert type_features(how_many, "18")["number_match"] == 1.0
    assert type_features(how_many, "weeks of fierce fighting")["number_mismatch"] == 1.0
    when = question_shape("When did Qusayr fall?")
    assert type_features(when, "June 5, 2013")["type_match"] == 1.0


def _list_of(text: str, item: str) -> str | None:
    start = text.index(item)
    found = list_around(text, start, start + len(item), (0, len(text)))
    return text[found[0]:found[1]] if found else None


def test_an_item_of_a_list_of_names_grows_to_the_whole_list():
    backers = ("Saudi Arabia, Qatar and Turkey - Sunni powers - have been major supporter of the rebels, "
               "providing them with arms and cash.")  # seeds/004
    assert _list_of(backers, "Saudi Arabia") == "Saudi Arabia, Qatar and Turkey"
    assert _list_of(backers, "Qatar") == "Saudi Arabia, Qatar and Turkey"
    assert _list_of(backers, "Saudi Arabia, Qatar and Turkey") is None  # already whole
    rockets = "Bashar's troops are getting a lot of arms from Iran and Russia, especially long-range rockets."
    assert _list_of(rockets, "Iran") == "Iran and Russia"
    allies = "The regime is backed by Russia, Iran and the Lebanese Hezbollah."
    assert _list_of(allies, "Russia") is None  # "the Lebanese Hezbollah" is not a name item: no list
    assert _list_of("The Friends of Syria, Turkey and Qatar met.", "Turkey") == "Friends of Syria, Turkey and Qatar"
    assert _list_of("Rebels withdrew from Qusayr on Tuesday.", "Qusayr") is None
    assert _list_of(backers, "arms") is None  # a lower-case span is no list item
