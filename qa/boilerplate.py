"""Tell an article's own paragraphs from site furniture (job ads, teasers, footers, share/sign-up lines).

Furniture must never be indexed: a reader would happily answer "£25000" from a job advert. The method is
jusText-like and uses only general paragraph features, no strings from particular sites:

1. Per paragraph: word count, stopword density (prose is full of function words, menus and teasers are
   not), whether it ends like a sentence, and high-precision *furniture signals* (copyright lines,
   calls to action addressed to the reader, salary ranges, bare e-mail/URL lines, browser notices,
   navigation headings such as "More on this story", "Powered by ..." widget credits).
2. Context. Scraped pages end with a block of furniture: once a furniture signal appears and the article
   never resumes after it (no two consecutive prose paragraphs, no long prose paragraph), everything from
   there to the end is boilerplate, including teaser blurbs that read like prose; short title-like lines
   just before that block belong to it too. Short lines between two boilerplate paragraphs, short lines
   right after a furniture signal and runs of three or more title-like lines are boilerplate as well.

When in doubt a paragraph is kept: losing a real sentence is worse than indexing a stray heading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

# A common English stopword list (function words). Prose has a density above ~0.3; menus, headlines and
# teaser titles are mostly content words.
_STOPWORD_TEXT = """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me might
    more most must my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up upon very was we were what when where which while who whom why
    will with would you your yours yourself yourselves said says say one there's it's that's who's"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")
_CLOSERS = "\"'’”»)]}*"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w{2,}")
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|you're|you'll)\b", re.IGNORECASE)
_READER_OR_SITE = re.compile(r"\b(?:you|your|yours|us|our)\b", re.IGNORECASE)

_COPYRIGHT = re.compile(r"©|\(c\)\s*\d{4}|\bcopyright\s+(?:\(c\)|\d{4})|\ball rights reserved\b", re.IGNORECASE)
# Calls to action: interface verbs and phrases that address the reader of a web page.
_CALL_TO_ACTION = re.compile(
    r"\b(?:sign(?:ing)? up|sign in|log ?in|subscrib(?:e|ing)|newsletters?|click(?:ing|ed)?|tap here|"
    r"learn more|read more|find out more|follow us|share (?:this|on)|try (?:our|the new)|"
    r"download (?:our|the) app|terms of (?:use|service)|privacy policy|cookie policy|advertisement|"
    r"sponsored)\b",
    re.IGNORECASE,
)
_IMPERATIVE_START = re.compile(
    r"^(?:sign up|subscribe|click|tap|share|follow|download|try|learn|read more|find out|register|log ?in|"
    r"join us|get (?:the|our))\b",
    re.IGNORECASE,
)
# Words of a web page talking about itself ("best viewed in an up-to-date browser with CSS enabled").
_WEB_TERMS = re.compile(
    r"\b(?:browsers?|javascript|css|style ?sheets?|cookies?|web ?site|site|page|app|apps|plug-?in|"
    r"enabl(?:e|ed|ing)|upgrad(?:e|ing)|download|log ?in|account|password|newsletter|e-?mails?)\b",
    re.IGNORECASE,
)
# Money range with a pay period: the shape of a job advert, not any mention of money.
_SALARY = re.compile(
    r"[£$€]\s?\d[\d,.]*\s?k?\s*(?:-|–|—|to)\s*[£$€]?\s?\d[\d,.]*\s?k?\b[^.]{0,12}?"
    r"(?:per\s+(?:annum|year|hour|day|week|month)|p\.?a\.?\b|pro rata|\+?\s?ote\b)",
    re.IGNORECASE,
)
_JOB_WORD = re.compile(r"(?:jobs?\b|\brecruit\w*|\bvacanc(?:y|ies)\b|\bcareers?\b)", re.IGNORECASE)
# The page talking about itself, as browser and cookie notices do.
_SELF_REFERENCE = re.compile(r"\b(?:this|our) (?:page|site|website|app)\b|\bplease\b", re.IGNORECASE)
# Navigation headings of news sites (generic section names, not one site's wording).
_NAV_HEADING = re.compile(
    r"^(?:more (?:on|from|in|about)\b.{0,40}|more\b.{0,30}\b(?:stories|news|videos)|related(?: \w+)?|"
    r"most (?:read|popular|viewed|shared|watched|commented)|elsewhere (?:on|in)\b.*|top stories|"
    r"you (?:may|might) also (?:like|be interested)\b.*|recommended(?: for you)?|editor'?s picks|"
    r"trending(?: now)?|latest (?:news|stories|videos|headlines)|sponsored(?: \w+)?|advertisement|"
    r"share (?:this|on)\b.*)$",
    re.IGNORECASE,
)
_WIDGET_CREDIT = re.compile(
    r"^(?:powered by|translated by|brought to you by|sponsored by|in partnership with|promoted by)\b", re.IGNORECASE
)

TITLE_MAX_WORDS = 10  # at most this many words and no sentence ending: a heading, menu item or teaser title
PROSE_MIN_WORDS = 8
LONG_PROSE_WORDS = 40  # a single prose paragraph this long means the article text goes on
PROSE_STOPWORDS = 0.25


@dataclass(frozen=True)
class _Features:
    words: int
    stopword_density: float
    sentence_like: bool  # ends with . ! ? (not a truncating "...")
    title_like: bool
    prose: bool
    signal: str  # furniture signal ("" when none)


def classify_paragraphs(lines: list[str]) -> list[tuple[bool, str]]:
    """For each paragraph (one line of normalised text): (is_boilerplate, reason); reason is "" when kept."""
    feats = [_features(line) for line in lines]
    n = len(lines)
    reasons = [f.signal for f in feats]
    markers = [i for i, f in enumerate(feats) if f.signal]

    for i in range(n):
        if not reasons[i] and _is_job_title(lines[i], feats[i]):
            reasons[i] = "job listing"
    _mark_title_runs(lines, feats, reasons)
    _mark_duplicates_and_lists(lines, feats, reasons)

    tail = _tail_start(feats, reasons, markers)
    for i in range(tail, n):
        reasons[i] = reasons[i] or "after the end of the article (site furniture)"
    for m in markers:
        j = m + 1
        while j < tail and feats[j].title_like:
            reasons[j] = reasons[j] or "follows site furniture"
            j += 1
    _smooth(feats, reasons)
    return [(bool(r), r) for r in reasons]


def _features(line: str) -> _Features:
    text = line.strip()
    words = _WORD.findall(text)
    n = len(words)
    density = sum(w.lower() in _STOPWORDS for w in words) / n if n else 0.0
    core = text.rstrip(_CLOSERS + " ")
    sentence_like = n >= 4 and core[-1:] in (".", "!", "?") and not core.endswith("..")
    title_like = not sentence_like and n <= TITLE_MAX_WORDS
    prose = sentence_like and n >= PROSE_MIN_WORDS and density >= PROSE_STOPWORDS
    shape = _Features(n, density, sentence_like, title_like, prose, "")
    return replace(shape, signal=_signal(text, shape))


def _signal(text: str, f: _Features) -> str:
    """A high-precision furniture signal, or ""."""
    if not text:
        return "empty"
    if f.words <= 40 and _COPYRIGHT.search(text):
        return "copyright line"
    rest = _HANDLE.sub(" ", _URL.sub(" ", _EMAIL.sub(" ", text)))
    if rest != text and len(_WORD.findall(rest)) <= 3 and not f.sentence_like:
        return "bare e-mail address or link"
    if _SALARY.search(text) and not f.prose:
        return "job advert (salary range)"
    if f.words <= 12 and _WIDGET_CREDIT.search(text):
        return "widget credit"
    if f.title_like and f.words <= 6 and _NAV_HEADING.match(text.rstrip(":")):
        return "navigation heading"
    if _is_call_to_action(text, f):
        return "call to action (sign up / share / click)"
    web_terms = {m.lower().replace(" ", "") for m in _WEB_TERMS.findall(text)}
    if len(web_terms) >= 3 and _SECOND_PERSON.search(text) and _SELF_REFERENCE.search(text):
        return "notice about the web page"
    return ""


def _is_call_to_action(text: str, f: _Features) -> bool:
    """Interface phrases count only when addressed to the reader, imperative, or in a bare short line.

    "Thousands sign up to fight" is news; "Start your day with us, sign up for daily emails" is not.
    """
    hits = {m.lower() for m in _CALL_TO_ACTION.findall(text)}
    if not hits:
        return False
    if len(hits) >= 2 and f.words <= 40:
        return True
    if f.words > 25:
        return False
    return bool(_READER_OR_SITE.search(text) or _IMPERATIVE_START.match(text) or (f.title_like and f.words <= 6))


def _is_job_title(line: str, f: _Features) -> bool:
    """"Agency: Job title" listings and tiny job-widget labels; not headlines that merely mention jobs."""
    if not f.title_like or not _JOB_WORD.search(line):
        return False
    return ":" in line or f.words <= 3


def _mark_title_runs(lines: list[str], feats: list[_Features], reasons: list[str]) -> None:
    """Three or more title-like lines in a row are a menu or a list of links.

    Unless a colon introduces them ("Key points:"): then they are a list in the article.
    """
    i, n = 0, len(feats)
    while i < n:
        j = i
        while j < n and feats[j].title_like:
            j += 1
        introduced = lines[i].rstrip().endswith(":") or (i > 0 and lines[i - 1].rstrip().endswith(":"))
        if j - i >= 3 and not introduced:
            for k in range(i, j):
                reasons[k] = reasons[k] or "run of title-like lines (menu or link list)"
        i = max(j, i + 1)


def _mark_duplicates_and_lists(lines: list[str], feats: list[_Features], reasons: list[str]) -> None:
    """Repeated paragraphs (teaser headline + teaser text) and long keyword lists without function words."""
    seen: set[str] = set()
    for i, line in enumerate(lines):
        key = " ".join(line.casefold().split())
        if key in seen and feats[i].words >= 3:
            reasons[i] = reasons[i] or "repeats an earlier paragraph"
        seen.add(key)
        if feats[i].words >= 12 and not feats[i].sentence_like and feats[i].stopword_density < 0.1:
            reasons[i] = reasons[i] or "keyword list (almost no function words)"


def _tail_start(feats: list[_Features], reasons: list[str], markers: list[int]) -> int:
    """Index where the closing block of furniture starts (len(feats) when there is none).

    The block starts at the first furniture signal after which the article never resumes; resuming
    means two prose paragraphs in a row or one long prose paragraph (teasers are short and alternate
    with titles, so they never qualify). Title-like or short unfinished lines just before it join it.
    """
    n = len(feats)

    def real(i: int) -> bool:
        return i < n and feats[i].prose and not reasons[i]

    resumes = [False] * (n + 1)  # resumes[i]: the article text resumes at or after i
    for i in range(n - 1, -1, -1):
        here = real(i) and (real(i + 1) or feats[i].words >= LONG_PROSE_WORDS)
        resumes[i] = here or resumes[i + 1]
    start = next((m for m in markers if not resumes[m + 1]), n)
    while 0 < start < n and not feats[start - 1].sentence_like and feats[start - 1].words <= 30:
        start -= 1
    return start


def _smooth(feats: list[_Features], reasons: list[str]) -> None:
    """jusText's neighbour rule: a title-like line whose nearest longer neighbours are both boilerplate."""
    n = len(feats)
    for i in range(n):
        if reasons[i] or not feats[i].title_like:
            continue
        before = next((j for j in range(i - 1, -1, -1) if not feats[j].title_like), None)
        after = next((j for j in range(i + 1, n) if not feats[j].title_like), None)
        if before is not None and after is not None and reasons[before] and reasons[after]:
            reasons[i] = "between boilerplate paragraphs"
