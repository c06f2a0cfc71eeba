"""The answer stage's lexical helpers: answer keys, appositive trimming, question-sentence overlap (with and
without the shipped WordNet synonym table)."""

from __future__ import annotations

import math

from qa.answer import (
    answer_key,
    complete_list,
    question_synonyms,
    question_terms,
    sentence_overlap,
    synonym_overlap,
    synonyms,
    trim_appositive,
)
from qa.reader import Span


def test_answer_keys_group_spelling_variants_and_number_forms():
    assert answer_key("Hezbollah") == answer_key("Hizbollah")
    assert answer_key("18-day") == answer_key("18 days")
    assert answer_key("94,000") == answer_key("94000")
    assert answer_key("Aleppo") != answer_key("Qusayr")


def test_a_span_is_cut_at_a_spaced_dash_but_a_number_range_is_kept():
    text = "Saudi Arabia, Qatar and Turkey - Sunni powers"
    trimmed = trim_appositive(Span(10, 10 + len(text), text, 5.0, 0.5))
    assert (trimmed.text, trimmed.start, trimmed.end) == ("Saudi Arabia, Qatar and Turkey", 10, 40)
    assert trim_appositive(Span(0, 11, "1990 – 2000", 1.0, 0.1)).text == "1990 – 2000"
    assert trim_appositive(Span(0, 17, "£25,000 - £28,000", 1.0, 0.1)).text == "£25,000 - £28,000"
    assert trim_appositive(Span(0, 19, "80,000 - a UN count", 1.0, 0.1)).text == "80,000"
    assert trim_appositive(Span(0, 15, "Jabhat al-Nusra", 1.0, 0.1)).text == "Jabhat al-Nusra"
    assert trim_appositive(Span(0, 9, "- Qusayr", 1.0, 0.1)).text == "- Qusayr"


def _span_of(text: str, part: str) -> Span:
    start = text.index(part)
    return Span(start, start + len(part), part, 3.0, 0.4)


def test_a_list_cut_before_its_last_item_runs_on_to_its_end_and_only_to_its_end():
    backers = ("Saudi Arabia, Qatar and Turkey - Sunni powers - have been major supporters of the rebels, "
               "providing them with arms and cash.")  # seeds/004
    whole = complete_list(backers, _span_of(backers, "Saudi Arabia, Qatar"), (0, len(backers)))
    assert (whole.text, whole.start, whole.end) == ("Saudi Arabia, Qatar and Turkey", 0, 30)
    assert whole.score == 3.0 and whole.prob == 0.4  # the reader's scores of the span it grew from
    single = _span_of(backers, "Qatar")
    assert complete_list(backers, single, (0, len(backers))) is single  # one item: Config.list_answers' call
    # A list's start is ambiguous with a clause before it; the span is not moved leftwards (a SQuAD case).
    war = "He fought in the American Revolutionary War, Washington and Thomas Gage, among others."
    tail = _span_of(war, "Washington and Thomas Gage")
    assert complete_list(war, tail, (0, len(war))) is tail


def test_sentences_needed_are_those_that_can_reach_the_page():
    """A candidate that can never be shown still counts when it shares an answer with one that can (a further
    source) or overlaps such a span (it may hide it); an unrelated weak one is not embedded."""
    from qa.answer import FEATURES, _sentences_needed
    from qa.config import DEFAULT_CONFIG
    from qa.types import Hit, Passage

    text = "Hezbollah fighters crossed from Lebanon into Syria near Qusayr."
    hits = {doc: Hit(Passage(f"{doc}#0", doc, doc, text, 0, len(text)), 1.0) for doc in ("a", "b", "c")}

    def found(doc: str, start: int, end: int, rank: int) -> tuple:
        return (rank, hits[doc], Span(start, end, text[start:end], 0.0, 0.5), 0.0, (0, len(text)))

    def features(margin: float, rank: int) -> dict[str, float]:
        return {**dict.fromkeys(FEATURES, 0.0),  # answer types: none asked for
                "margin": margin, "log_prob": 0.0, "dense": 0.5, "log_rank": math.log(rank),
                "sentence_dense": -1.0, "log_support": 0.0, "sentence_overlap": 1.0,
                "synonym_overlap": 1.0}

    rows = [
        (found("a", 0, 9, 1), features(10.0, 1)),  # "Hezbollah", strong: may be shown
        (found("b", 0, 9, 6), features(-10.0, 6)),  # "Hezbollah" again, weak: a further source of it
        (found("b", 0, 18, 6), features(-10.0, 6)),  # "Hezbollah fighters", weak, overlaps the one above
        (found("c", 32, 38, 6), features(-10.0, 6)),  # "Lebanon", weak and alone: never seen
    ]
    assert _sentences_needed([r[0] for r in rows], [r[1] for r in rows], DEFAULT_CONFIG) == [0, 1, 2]


def _group(text: str, doc: str):
    from qa.answer import _Group
    from qa.types import Source

    return _Group(text, 0.5, {}, [Source(doc, doc, f"{doc}#0", text, 0, len(text), 0, len(text))])


def test_sources_disagree_on_durations_in_words_and_on_counts_but_not_across_kinds():
    from qa.conflicts import disagree

    # seeds/004 "an 18-day battle" vs seeds/002 "three weeks of bitter fighting": 18 vs 21 days
    assert disagree(_group("18-day", "004.txt"), _group("three weeks", "002.txt"))
    assert not disagree(_group("18-day", "004.txt"), _group("18 days", "002.txt"))
    assert disagree(_group("80,000", "002.txt"), _group("94,000", "004.txt"))
    assert not disagree(_group("80,000", "002.txt"), _group("94,000", "002.txt"))  # one article: no conflict
    assert not disagree(_group("three weeks", "002.txt"), _group("80,000", "004.txt"))
    assert not disagree(_group("Aleppo", "002.txt"), _group("Homs", "004.txt"))  # names are not quantities


def test_a_bare_number_counts_in_the_unit_its_passage_or_question_names():
    from qa.answer_types import question_shape, question_unit_days
    from qa.conflicts import disagree
    from qa.types import Source

    days = question_unit_days(question_shape("How many days did the battle for Qusayr take?"))
    assert days == 1.0 and question_unit_days(question_shape("How many people died?")) is None
    # "18" for "how many days" is 18 days: it disagrees with "three weeks", agrees with "18 days"
    assert disagree(_group("18", "004.txt"), _group("three weeks", "002.txt"), days)
    assert not disagree(_group("18", "004.txt"), _group("18 days", "002.txt"), days)
    assert not disagree(_group("18", "004.txt"), _group("three weeks", "002.txt"))  # no unit: not comparable
    # "18" read from "an 18-day battle" is 18 days whatever the question counts in (here weeks: not 18 weeks)
    text = "After an 18-day battle, the town fell."
    start = text.index("18")
    from_passage = _group("18", "004.txt")
    from_passage.sources[0] = Source("004.txt", "004", "004.txt#1", text, start, start + 2, start, start + 2)
    weeks = question_unit_days(question_shape("How many weeks did the battle for Qusayr last?"))
    assert disagree(from_passage, _group("three weeks", "002.txt"), weeks)
    assert not disagree(from_passage, _group("18 days", "002.txt"), weeks)


def test_sentence_overlap_is_the_share_of_question_terms_the_sentence_repeats():
    """Terms as the lexical index makes them: stems and spelling-variant keys, question words dropped."""
    terms = question_terms("Who backed the rebels in Qusair?")
    assert terms == {"back", "~bck", "rebel", "~rbl", "qusair", "~qsr"}
    # "rebels" (stem and key) and Qusayr's key match; "backed" does not ("supporters of")
    assert sentence_overlap(terms, "Qatar and Turkey have been major supporters of the rebels in Qusayr.") == 0.5
    assert sentence_overlap(terms, "The rebels backed out of Qusair.") == 1.0
    assert sentence_overlap(question_terms("Who did it?"), "Anything.") == 1.0  # no content terms: no signal


def test_synonym_overlap_counts_close_wordnet_synonyms_and_derived_forms():
    """The shipped table (training/make_synonyms.py) links the seeds' wordings to the questions' ones."""
    q = question_synonyms("Who backed the rebels in Qusair?")
    supporters = "Qatar and Turkey have been major supporters of the rebels in Qusayr."
    assert synonym_overlap(q, supporters) == 1.0  # "backed" ~ "supporters", "Qusair" ~ "Qusayr" (variant key)
    assert synonym_overlap(q, "Hezbollah fighters crossed the border.") == 0.0
    assert synonym_overlap(q, "The rebels backed out of Qusair.") == 1.0
    assert synonym_overlap(question_synonyms("Who supplies the rockets?"), "Iran provides the rockets.") == 1.0
    assert synonym_overlap(question_synonyms("Who supplies the rockets?"), "Iran fires the rockets.") == 0.5
    table = synonyms()  # symmetric: whichever of the two words the question uses
    assert "support" in table["back"].split() and "back" in table["support"].split()
    assert synonym_overlap(question_synonyms("Who did it?"), "Anything.") == 1.0
