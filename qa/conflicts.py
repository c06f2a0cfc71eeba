"""Sources that disagree: do two answers from different articles state different quantities?

Why its own module: the answer stage (qa.answer) decides which answers are shown; this decides which of them
contradict each other ("an 18-day battle" in one article, "three weeks of bitter fighting" in another), so that
both sides are shown with their sources (qa.answer.answer_from_hits; whether they are answered together is
qa.calibration.sides_confidence). Quantities are parsed and compared by qa.answer_types.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from qa.answer_types import durations_in_days, numbers_in, quantities_disagree
from qa.types import Source


class Stated(Protocol):
    """An answer as the check sees it (qa.answer's grouped answers): its text, and where it was read."""

    @property
    def text(self) -> str: ...

    @property
    def sources(self) -> Sequence[Source]: ...


def comparable(text: str) -> bool:
    """Does ``text`` state a number or a duration: the only answers :func:`disagree` can find at odds."""
    return bool(numbers_in(text) or durations_in_days(text))


def disagree(a: Stated, b: Stated, unit_days: float | None = None) -> bool:
    """Answers from different articles that state different quantities ("18 days" vs "three weeks", 80,000 vs
    94,000): durations are compared in days, counts as numbers (qa.answer_types); a bare number counts in the
    question's unit when it names one (``unit_days``)."""
    docs_a = {s.doc_id for s in a.sources}
    docs_b = {s.doc_id for s in b.sources}
    return not (docs_a & docs_b) and quantities_disagree(stated(a), stated(b), unit_days)


_NEXT_WORD = re.compile(r"[\s-]?([A-Za-z]+)")


def stated(g: Stated) -> str:
    """An answer with the time unit its text stops short of: "18" read from "an 18-day battle" is "18 day",
    so it is compared as 18 days whatever unit the question counts in."""
    src = g.sources[0]
    m = _NEXT_WORD.match(src.passage_text, src.end)
    if m and numbers_in(g.text) and not durations_in_days(g.text) and durations_in_days("2 " + m.group(1)):
        return f"{g.text} {m.group(1)}"
    return g.text
