"""What shape of answer a question asks for, what shape a span has, and quantities in comparable units.

Why: the reader ranks spans by where they sit in the text, not by what they are. "How long was the fight?"
read against "a long and bloody fight" gives "long"; "How many days..." against "an 18-day battle" gives a
bare "18" that the confidence model cannot tell from any other number. These features let the confidence
model (fitted on SQuAD candidates, training/calibrate.py) learn that a duration question wants a number with a
time unit, a "who" question a name, a "which countries" question possibly a list, without rules written for
particular questions. The same quantity parsing makes "an 18-day battle" (18 days) and "three weeks of
fighting" (21 days) comparable, so disagreeing sources are detected beyond bare numbers.

Everything here is pure string work on the question and the span (no model), cheap enough for every
candidate on the question path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- question shape -------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d[\d,.]*")
_TIME_UNITS_DAYS = {
    "second": 1 / 86400, "minute": 1 / 1440, "hour": 1 / 24, "day": 1.0, "night": 1.0, "week": 7.0,
    "fortnight": 14.0, "month": 30.44, "year": 365.25, "decade": 3652.5, "century": 36525.0,
}
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
    "dozen": 12, "several": 3, "couple": 2,
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000,
           "m": 1_000_000, "bn": 1_000_000_000, "k": 1_000}
_MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
_DATE_WORDS = _MONTHS | _WEEKDAYS | {"yesterday", "today", "tomorrow"}
_LIST_SEPARATORS = re.compile(r",\s+|\s+and\s+|\s+or\s+|\s*&\s*")
_STOP_HEADS = frozenset("is was are were did does do has have had the a an of in on to for and or".split())


@dataclass(frozen=True)
class QuestionShape:
    """The answer a question asks for.

    ``kind``: ``duration`` (how long), ``count`` (how many), ``quantity`` (how much / how far / how old ...),
    ``date`` (when, what year/date/month/day), ``person`` (who, whom, whose), ``place`` (where),
    ``entity`` (which/what + a noun: the noun is ``head``), ``reason`` (why), ``manner`` (how), ``other``.
    ``wants_list``: the question can take several items (a plural head noun, "which two ...", "who" with a
    plural-taking verb is not decidable from words, so "who" counts as list-capable).
    """

    kind: str
    head: str = ""
    wants_list: bool = False


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text)


def _plural(noun: str) -> bool:
    return len(noun) > 3 and noun.endswith("s") and not noun.endswith(("ss", "us", "is"))


def question_shape(question: str) -> QuestionShape:
    """Classify a question by its wh-word and the noun after it (first wh-word in the question wins)."""
    words = [w.lower() for w in _tokens(question)]
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        after = words[i + 2] if i + 2 < len(words) else ""
        if w == "how":
            if nxt in ("long", "longer"):
                return QuestionShape("duration")
            if nxt in ("many",):
                return QuestionShape("count", head=after, wants_list=False)
            if nxt in ("much", "far", "old", "big", "large", "high", "tall", "deep", "wide", "often", "fast"):
                return QuestionShape("quantity", head=nxt)
            return QuestionShape("manner")
        if w in ("who", "whom", "whose"):
            return QuestionShape("person", wants_list=True)
        if w == "where":
            return QuestionShape("place")
        if w == "when":
            return QuestionShape("date")
        if w == "why":
            return QuestionShape("reason")
        if w in ("which", "what"):
            # "which two countries", "what year", "what is the name of ..."
            j = i + 1
            count = 0
            while j < len(words) and (words[j] in _NUMBER_WORDS or words[j].isdigit()) and words[j] not in ("a", "an"):
                count = max(count, _NUMBER_WORDS.get(words[j], 0) or (int(words[j]) if words[j].isdigit() else 0))
                j += 1
            head = words[j] if j < len(words) and words[j] not in _STOP_HEADS else ""
            if head in ("year", "date", "month", "day", "time", "decade", "century"):
                return QuestionShape("date", head=head)
            if head:
                return QuestionShape("entity", head=head, wants_list=count > 1 or _plural(head))
            return QuestionShape("other" if w == "what" else "entity")
    return QuestionShape("other")


# --- span shape ------------------------------------------------------------------------------------------


def _number_value(word: str) -> float | None:
    w = word.lower().replace(",", "").rstrip(".")
    if w in _NUMBER_WORDS and w not in ("a", "an"):
        return float(_NUMBER_WORDS[w])
    try:
        return float(w)
    except ValueError:
        return None


def _unit(word: str) -> str | None:
    w = word.lower()
    for unit in _TIME_UNITS_DAYS:
        if w in (unit, unit + "s", unit + "es") or (unit == "century" and w == "centuries"):
            return unit
    return None


def durations_in_days(text: str) -> set[float]:
    """Durations stated in a span, in days: "an 18-day battle" -> {18}, "three weeks" -> {21}, "a month" -> {30.44}."""
    words = [w for part in _tokens(text) for w in part.split("-") if w]
    found: set[float] = set()
    for i, w in enumerate(words):
        unit = _unit(w)
        if unit is None or i == 0:
            continue
        value = _number_value(words[i - 1])
        if value is None and words[i - 1].lower() in ("a", "an"):
            value = 1.0
        if value is None:
            continue
        found.add(round(value * _TIME_UNITS_DAYS[unit], 4))
    return found


def numbers_in(text: str) -> set[float]:
    """Numbers stated in a span, scaled ("80,000" -> 80000, "1.5 million" -> 1.5e6, "three" -> 3)."""
    words = _tokens(text)
    found: set[float] = set()
    for i, w in enumerate(words):
        value = _number_value(w)
        if value is None:
            continue
        nxt = words[i + 1].lower() if i + 1 < len(words) else ""
        if nxt in _SCALES and nxt not in ("hundred",) or nxt == "hundred" and value < 100:
            value *= _SCALES[nxt]
        found.add(value)
    return found


def _has_date(words: list[str]) -> bool:
    return any(w.lower() in _DATE_WORDS for w in words) or any(
        w.isdigit() and len(w) == 4 and 1000 <= int(w) <= 2100 for w in words
    )


def list_items(text: str) -> list[str]:
    """The items of a list-shaped span ("Saudi Arabia, Qatar and Turkey" -> 3 items), else [text]."""
    items = [p.strip() for p in _LIST_SEPARATORS.split(text) if p.strip()]
    # Items are short names or noun phrases; "June 5, 2013" (numbers) or clauses are not lists.
    if len(items) < 2 or any(len(_tokens(p)) > 4 or not p[:1].isalpha() for p in items):
        return [text]
    return items


def span_shape(text: str) -> dict[str, float]:
    """Surface features of a span: numbers, time units, dates, capitalisation, list shape."""
    words = _tokens(text)
    content = [w for w in words if w.lower() not in _STOP_HEADS]
    caps = [w for w in content if w[:1].isupper()]
    return {
        "has_number": float(any(_number_value(w) is not None for w in words if w.lower() not in ("a", "an"))),
        "has_duration": float(bool(durations_in_days(text))),
        "has_date": float(_has_date(words)),
        "cap_ratio": len(caps) / len(content) if content else 0.0,
        "is_list": float(len(list_items(text)) > 1),
        "n_words": float(len(words)),
    }


# Feature names added to the confidence model (qa.answer.FEATURES) by ``type_features``.
TYPE_FEATURES = ("type_match", "type_mismatch", "list_match", "number_match", "number_mismatch")
_NUMBER_KINDS = frozenset({"duration", "count", "quantity", "date"})
# The kinds whose answers are quantities that sources can disagree on ("how long / many / much"; not dates).
QUANTITY_KINDS = frozenset({"duration", "count", "quantity"})


def type_features(shape: QuestionShape, span: str, sentence: str = "") -> dict[str, float]:
    """Does the span have the shape the question asks for? Features for the confidence model, which weighs
    the number pair (the others are kept for the ablation that chose it):

    - ``type_match``: the span has the asked shape (a duration for "how long", a number for "how many" /
      "how much", a date for "when", a capitalised name for "who"/"where", the head noun of "which N" next
      to the span in its sentence);
    - ``type_mismatch``: a question that asks for a number, duration or date answered by a span with none, or
      a "who"/"where" question answered by a span with no capitalised word;
    - ``list_match``: a list-shaped span for a question that can take several items;
    - ``number_match`` / ``number_mismatch``: the first two for "how long/many/much" and "when" questions only
      (the pair the shipped calibration weighs).
    """
    s = span_shape(span)
    kind, match, mismatch = shape.kind, 0.0, 0.0
    if kind == "duration":
        match, mismatch = s["has_duration"], float(not s["has_duration"] and not s["has_number"])
    elif kind in ("count", "quantity"):
        match, mismatch = s["has_number"], float(not s["has_number"])
    elif kind == "date":
        match, mismatch = s["has_date"], float(not s["has_date"] and not s["has_number"])
    elif kind in ("person", "place"):
        match, mismatch = float(s["cap_ratio"] >= 0.5), float(s["cap_ratio"] == 0.0)
    elif kind == "entity" and shape.head and sentence:
        stem = shape.head[:-1] if _plural(shape.head) else shape.head
        match = float(stem[:5] in sentence.lower())
    number = kind in _NUMBER_KINDS
    return {
        "type_match": match,
        "type_mismatch": mismatch,
        "list_match": float(shape.wants_list and s["is_list"] > 0),
        # The same two signals for the questions that ask for a number, a duration or a date only. Fitted on SQuAD
        # they weigh +0.25 / -0.45 where type_match / type_mismatch over every kind weigh +0.53 / -0.17 and cost a
        # must-abstain seeds question: a lower-case span is often right for "who" in SQuAD ("the monks"), a span
        # without a number rarely for "how long" (bench/results/answer_ablation_types.md).
        "number_match": match if number else 0.0,
        "number_mismatch": mismatch if number else 0.0,
    }


# A list of names in running text: "Saudi Arabia, Qatar and Turkey", "Iran and Russia", "Russia, Iran and
# Hezbollah". An item is one to four capitalised words (joined by "of"/"the"/"al-" as in "Friends of Syria");
# items are separated by commas and the last one follows "and"/"or" (an Oxford comma allowed).
_NAME = r"[A-Z][\w'\u2019-]*(?:\s+(?:(?:of|the|de|al)\s+)?[A-Z][\w'\u2019-]*){0,3}"
_NAME_LIST = re.compile(rf"{_NAME}(?:\s*,\s*{_NAME})*\s*,?\s+(?:and|or)\s+{_NAME}")
_LEADING_FUNCTION_WORD = re.compile(r"(?:The|A|An|In|On|At|By|From|With|For|To|And|But|Both|Either)\s+")


def list_around(text: str, start: int, end: int, sentence: tuple[int, int]) -> tuple[int, int] | None:
    """The whole list of names that ``text[start:end]`` is part of, within its sentence; None when it is not.

    Why: a reader trained on SQuAD often returns one item of a list ("Saudi Arabia") for a question that
    asks for all of them ("Who backed the rebels?"). The answer stage offers the whole list as a further
    candidate; whether a list or an item is shown is the confidence model's call (``list_match`` is one of its
    features, fitted on SQuAD). Only lists of capitalised names are recognised: lists of common nouns are
    rarely what a "who"/"which" question wants, and their item boundaries are much less clear.
    """
    a, b = sentence
    for m in _NAME_LIST.finditer(text, a, b):
        lo, hi = m.start(), m.end()
        lead = _LEADING_FUNCTION_WORD.match(text, lo)  # "The rebels' backers, ..." is not an item "The ..."
        if lead and lead.end() < hi:
            lo = lead.end()
        if lo <= start and end <= hi and (start, end) != (lo, hi) and text[start:end].strip()[:1].isupper():
            return lo, hi
    return None


def question_unit_days(shape: QuestionShape) -> float | None:
    """The time unit a "how many days / weeks / years" question counts in, in days; None for other questions.
    Its bare-number answer ("18") is then a duration ("18 days") that can be compared with "three weeks"."""
    unit = _unit(shape.head) if shape.kind == "count" and shape.head else None
    return _TIME_UNITS_DAYS[unit] if unit else None


def quantities_disagree(a: str, b: str, unit_days: float | None = None) -> bool:
    """Two answers state different quantities of the same kind (durations in days, else plain numbers).
    ``unit_days``: the unit the question counts in (``question_unit_days``), which a bare number takes."""
    da, db = durations_in_days(a), durations_in_days(b)
    if unit_days is not None:
        da = da or {round(n * unit_days, 4) for n in numbers_in(a)}
        db = db or {round(n * unit_days, 4) for n in numbers_in(b)}
    if da and db:
        return not (da & db)
    if da or db:
        return False  # a duration against a bare number: not comparable
    na, nb = numbers_in(a), numbers_in(b)
    return bool(na and nb and not (na & nb))


def states_quantity(text: str, shape: QuestionShape) -> bool:
    """Does a passage state a quantity of the kind the question asks for (a duration for "how long", a number
    for "how many / much")? Which unread passages may hold a disagreeing answer (Config.rival_passages)."""
    if shape.kind == "duration":
        return bool(durations_in_days(text))
    if shape.kind in ("count", "quantity"):
        return bool(numbers_in(text) - {1.0} or durations_in_days(text))  # "a"/"one" is in every text
    return False
