"""Boilerplate detection: every seed's furniture is dropped, every real sentence kept; synthetic cases."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from qa.boilerplate import classify_paragraphs
from qa.config import DEFAULT_CONFIG
from qa.ingest import load_folder
from qa.types import Document

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@functools.cache
def _seeds() -> dict[str, Document]:
    return {d.doc_id: d for d in load_folder(SEEDS, DEFAULT_CONFIG).documents}


def _split(doc: Document) -> tuple[list[str], list[str]]:
    kept = [doc.text[p.start : p.end] for p in doc.paragraphs if not p.boilerplate]
    dropped = [doc.text[p.start : p.end] for p in doc.paragraphs if p.boilerplate]
    return kept, dropped


# Per seed: (kept paragraphs, dropped paragraphs), in order, by distinctive prefix.
EXPECTED: dict[str, tuple[list[str], list[str]]] = {
    "000_c16d11af959cac43.txt": (
        [  # kept
            'What next after the fall of Qusayr?',
            'We look at how the balance of power has shifted ',
            'It has been a week of military gains for the Syr',
            'President Bashar al-Assad’s forces regained cont',
            'The Free Syrian Army withdrew mostly for humanit',
            'by Saleh Mubarak, a member of the opposition SNC',
            'The city had been under the control of oppositio',
            'Thousands had already fled the city, but what ha',
            'Meanwhile, on the diplomatic front, the UN speci',
            'But the country may be a step closer to receivin',
            'The asset freeze against al-Assad and his close ',
            'Finally, the United Nations has appealed for a r',
            'The UN’s humanitarian aid chief, Valerie Amos, t',
            'To discuss the latest developments, Inside Syria',
            '“I am worried that the nature of the conflict ma',
            '– Robert Densemore, a defence and military analy',
        ],
        [  # dropped
        ],
    ),
    "001_e8f425aa3e78842d.txt": (
        [  # kept
            'After weeks of fierce fighting, the Syrian Army,',
            'Capturing Qusayr is by far the biggest accomplis',
            'A major blow to the opposition, the seizure of Q',
            'The statement affirmed that the defeat had cause',
            'It is certain that Western and Arab powers suppo',
            'Western powers will meet with the Syrian regime ',
            'The question that arises now is not about the st',
            'Just hours after Qusayr fell, both Britain and F',
            'We must remember that these two countries are th',
            'The war in Syria has become a purely sectarian w',
            'The war in Syria will inevitably be prolonged. H',
            'The fall of Qusayr to the Syrian regime is a maj',
            "This explains the Iranian leadership's hurry to ",
            'The strategy of the Syrian regime to transition ',
            'At the beginning of the Syrian crisis, the regim',
            'Now the greater concern, as well as the fear, ha',
            "Turkey, the regime's biggest opponent, is now su",
            'Bashar al-Assad may have allowed the hint of a s',
        ],
        [  # dropped
        ],
    ),
    "002_b421f2b8e3e2ac47.txt": (
        [  # kept
            'Rebels lose strategic town of Qusayr after three',
            'The forces of Bashar al-Assad are thought to be ',
            'The rebels’ loss of the town – which holds symbo',
            'Such an attack could come with further help from',
            'The opposition holds about half of the northern ',
            'Large swathes of territory remain outside the co',
            'The expectation among diplomats remains that the',
            'Residents in the predominantly Shia suburb of Da',
            'Furthermore, the entry of the Shia militia will ',
            'Anxiety to keep the Geneva talks on track is see',
            'Meanwhile, humanitarian organisations called for',
            'Qusayr, which had a population of 30,000 before ',
            'The rebels have now lost their supply line to th',
            'Although most of the rebel fighters in Qusayr ha',
            'General Salim Idriss, the head of the opposition',
            'Abu Qassem, a rebel commander in Idlib province,',
        ],
        [  # dropped
            'Start your day with The Independent, sign up for',
            'News',
            'ebooksNow available in paperback',
            'Have you tried new the Independent Digital Editi',
            'SPONSORED FEATURES',
            'Independent Dating',
            'and',
            "By clicking 'Search' you",
            'are agreeing to our',
            'Terms of Use.',
            'iJobs Job Widget',
            'iJobs General',
            'Recruitment Genius: Senior Environmental Adviser',
            '£37040 - £43600 per annum: Recruitment Genius: T',
            'Recruitment Genius: CBM & Lubrication Technician',
            '£25000 - £27500 per annum: Recruitment Genius: T',
            'Recruitment Genius: Care Worker - Residential Em',
            '£16800 - £19500 per annum: Recruitment Genius: W',
            'Recruitment Genius: Senior Landscaper',
            '£25000 - £28000 per annum: Recruitment Genius: I',
            'Day In a Page',
            'The long walk west: they fled war in Syria, only',
            'They fled war in Syria...',
            '...only to get stuck and sidetracked in Hungary',
            'From The Prisoner to Mad Men, elaborate title se',
            'Title sequences: From The Prisoner to Mad Men',
            'Elaborate title sequences are one of the keys to',
            "Giorgio Armani Beauty's fabric-inspired foundati",
            "Giorgio Armani Beauty's foundations",
            'Sumptuous fabrics meet luscious cosmetics for th',
            'From stowaways to Operation Stack: Life in a tra',
            "Life from the inside of a trucker's cab",
            "From stowaways to Operation Stack, it's a challe",
            'Kelis interview: The songwriter and sauce-maker ',
            'Kelis interview',
            'The singer and sauce-maker on cooking for Pharre',
            'Refugee crisis: David Cameron lowered the flag f',
            'Cameron lowered the flag for the dead king of Sa',
            'But will he do the same honour for little Aylan ',
            'Our leaders lack courage in this refugee crisis.',
            'Our leaders lack courage in this refugee crisis.',
            'Humanity must be at the heart of politics, says ',
            "Joe Biden's 'tease tour': Could the US Vice-Pres",
            "Joe Biden's 'tease tour'",
            'Could the US Vice-President be testing the water',
            "Britain's 24-hour culture: With the 'leisured so",
            "Britain's 24-hour culture",
            "With the 'leisured society' a distant dream we'r",
            'Diplomacy board game: Treachery is the way to wi',
            'The addictive nature of Diplomacy',
            'Bullying, betrayal, aggression – it may be just ',
            "Lady Chatterley's Lover: Racy underwear for fans",
            'Fashion: Ooh, Lady Chatterley!',
            "Take inspiration from DH Lawrence's racy tome wi",
            "8 best children's clocks",
            "Tick-tock: 8 best children's clocks",
            'Whether you’re teaching them to tell the time or',
            'Charlie Austin: Queens Park Rangers striker says',
            'Charlie Austin: ‘If the move is not right, I’m n',
            'After hitting 18 goals in the Premier League las',
            'Isis profits from destruction of antiquities by ',
            'How Isis profits from destruction of antiquities',
            "Robert Fisk on the terrorist group's manipulatio",
            'Labour leadership: Andy Burnham urges Jeremy Cor',
            "'If we lose touch we’ll end up with two decades ",
            'In an exclusive interview, Andy Burnham urges Je',
        ],
    ),
    "003_0ccbed5b938370f4.txt": (
        [  # kept
            'A general view shows soldiers loyal to the Syria',
            'The Syrian Prime Minister Wail al-Halqi has desc',
            'Similar claims were made in February last year w',
            'That turned out not to be the seminal victory th',
            'The fall of Qusair town had become more or less ',
            'In the end, rebel fighters recognised their situ',
            'Whether the government victory at Qusair will pr',
            'But in immediate terms, it is clearly a major bl',
            "From Hezbollah's point of view, it gives the Shi",
            'Difference of purpose',
            'The move at Qusair was part of a broader regime ',
            'Combined with an aggressive campaign to regain c',
            'But diplomats believe these gains could not have',
            'The assumption is that Hezbollah will continue i',
            'But its resources and manpower are not infinite,',
            'But the Qusair affair has highlighted not just t',
            "While that contrasts with the regime's singlenes",
            'If an international peace conference does indeed',
        ],
        [  # dropped
            'More on This Story',
            "Syria's war War in Syria",
            'More Middle East stories',
            'Features & Analysis',
            'Elsewhere on the BBC',
            '• Audi R8Best in show',
            'BBC Autos takes a look at 10 of the most eye-cat',
            '• Kinetic sculpture violinClick Watch',
            'The "kinetic sculpture" that can replicate digit',
            'Try our new site and tell us what you think. Lea',
            'Take me there',
            'Copyright © 2015 BBC. The BBC is not responsible',
            'This page is best viewed in an up-to-date web br',
        ],
    ),
    "004_84efbc475e867d2d.txt": (
        [  # kept
            "Syria's opposition strikes a defiant tone in def",
            'Syrian government soldiers stand in front of the',
            'GAZIANTEP, TURKEY // Assad regime forces and Hiz',
            'After an 18-day battle that reduced much of the ',
            'Video footage on pro-regime television showed Sy',
            'As international aid organisations waited to be ',
            '"The Free Syrian Army commits to carrying on the',
            'It said the FSA had fought "heroic battles" to d',
            'Qusayr became a focal point for the conflict as ',
            'Efforts to find a diplomatic solution to the con',
            'UN special envoy Lakhdar Brahimi said the Geneva',
            'Moscow is pushing for Iran, a key participant in',
            'Reports of skirmishes between pro-regime forces ',
            'A Syrian analyst with connections to both the re',
            '"It was essential for the regime to have won in ',
            'Nonetheless, Qusayr stood as a stark example of ',
            '"We very openly saw Iran and Hizbollah, and Russ',
            '"It is something of a crunch moment for the powe',
            'Saudi Arabia, Qatar and Turkey - Sunni powers - ',
            'The US and Europe have imposed economic sanction',
            'An EU arms embargo has now lapsed, however, open',
            "In contrast, Syria's supporters, Iran, Hizbollah",
            'Iran has, according to some reports, pumped bill',
            'Unconfirmed reports have said Hizbollah fighters',
            'The Iranian deputy foreign minister Hossein Amir',
            'The Syrian regime - dominated by Alawites, an ob',
            "Sana, Syria's state run news agency, which made ",
            '"The victory that was achieved at the hands of o',
            "Naim Qassim, Hezbollah's deputy secretary genera",
            '"The victory in Qusayr is a big blow to the Amer',
        ],
        [  # dropped
            'Powered by automated translation',
            'psands@thenational.ae',
        ],
    ),
}

# The last paragraph of each article's own text: everything after it is site furniture.
ARTICLE_END = {
    "000_c16d11af959cac43.txt": "– Robert Densemore, a defence and military analyst",
    "001_e8f425aa3e78842d.txt": "Bashar al-Assad may have allowed the hint of a smile",
    "002_b421f2b8e3e2ac47.txt": "Abu Qassem, a rebel commander in Idlib province",
    "003_0ccbed5b938370f4.txt": "If an international peace conference does indeed emerge",
    "004_84efbc475e867d2d.txt": "\"The victory in Qusayr is a big blow",
}
# Inside the article text, only these lines may be dropped.
ALLOWED_INSIDE = {"Powered by automated translation"}


@pytest.mark.parametrize("doc_id", sorted(EXPECTED))
def test_seed_kept_and_dropped_paragraphs(doc_id: str) -> None:
    kept, dropped = _split(_seeds()[doc_id])
    want_kept, want_dropped = EXPECTED[doc_id]
    assert [k[: len(w)] for k, w in zip(kept, want_kept, strict=False)] == want_kept and len(kept) == len(want_kept)
    assert [d[: len(w)] for d, w in zip(dropped, want_dropped, strict=False)] == want_dropped
    assert len(dropped) == len(want_dropped)


@pytest.mark.parametrize("doc_id", sorted(ARTICLE_END))
def test_no_real_article_sentence_is_dropped(doc_id: str) -> None:
    """Everything up to the article's last paragraph is kept (but widget lines); everything after is dropped."""
    doc = _seeds()[doc_id]
    texts = [doc.text[p.start : p.end] for p in doc.paragraphs]
    end = next(i for i, t in enumerate(texts) if t.startswith(ARTICLE_END[doc_id]))
    for para, text in zip(doc.paragraphs[: end + 1], texts, strict=False):
        assert not para.boilerplate or text in ALLOWED_INSIDE, (text, para.reason)
    assert all(p.boilerplate for p in doc.paragraphs[end + 1 :])


def test_money_sentence_in_seed_is_kept() -> None:
    doc = _seeds()["000_c16d11af959cac43.txt"]
    para = next(p for p in doc.paragraphs if "total of $5.4bn" in doc.text[p.start : p.end])
    assert not para.boilerplate


def test_every_dropped_paragraph_has_a_reason() -> None:
    paragraphs = [para for doc in _seeds().values() for para in doc.paragraphs]
    assert any(para.boilerplate for para in paragraphs)  # the seeds have furniture: the check below runs
    for para in paragraphs:
        assert para.boilerplate == bool(para.reason)


# --- synthetic cases ---------------------------------------------------------------------------

P1 = "The council voted on Tuesday to close the library, despite protests from residents who had campaigned."
P2 = "Officials said the building would be sold and the money used to fund services elsewhere in the borough."
P3 = "Campaigners said they would continue to fight the decision in the courts and at the next election."
P4 = "A spokesman for the council said the decision had not been taken lightly and was the only option left."


def _dropped(lines: list[str]) -> list[int]:
    labels = classify_paragraphs(lines)
    assert len(labels) == len(lines)
    assert all(bool(reason) == bad for bad, reason in labels)
    return [i for i, (bad, _) in enumerate(labels) if bad]


def test_job_advert_block_inside_article() -> None:
    lines = [P1, P2, "Jobs", "Acme Recruitment: Senior Developer",
             "£30000 - £40000 per annum: Acme Recruitment: A growing firm is looking for a...", P3, P4]
    assert _dropped(lines) == [2, 3, 4]
    assert "salary" in classify_paragraphs(lines)[4][1]


def test_copyright_line() -> None:
    assert _dropped([P1, P2, "© 2024 Example Media Ltd. All rights reserved."]) == [2]
    assert _dropped([P1, P2, "Copyright 2019 Example Corp"]) == [2]
    assert _dropped([P1, "The copyright dispute went to court on Monday, the publisher said.", P2]) == []


def test_subscribe_and_share_lines() -> None:
    assert _dropped([P1, "Subscribe to our newsletter for the latest headlines", P2, P3]) == [1]
    assert _dropped([P1, P2, "Share on Facebook", "Photo gallery", "Follow us on Twitter", P3, P4]) == [2, 3, 4]


def test_money_in_real_sentences_is_kept() -> None:
    lines = [
        "The contract is worth £25,000 - £28,000 per annum, the council said in a statement on Monday.",
        "It wants $3.9bn on top of the $1.5bn it asked for earlier this year, a total of $5.4bn.",
        "Thousands sign up to fight for the rebels.",
        "Share prices fell sharply, and investors said they would follow the news closely.",
    ]
    assert _dropped(lines) == []


def test_news_about_jobs_and_the_web_is_kept() -> None:
    lines = [
        "Unemployment rises as factories cut jobs",
        "Recruitment crisis hits hospitals",
        P1,
        "If you use the app, your account password may have been exposed, the company said on Monday.",
        P2,
    ]
    assert _dropped(lines) == []


def test_short_heading_between_prose_is_kept() -> None:
    assert _dropped([P1, "Difference of opinion", P2]) == []
    assert _dropped([P1, P2, "by Jane Smith, a local resident", P3]) == []


def test_list_introduced_by_colon_is_kept_but_bare_menu_is_not() -> None:
    items = ["Tax rises for the rich", "Cuts to welfare", "More money for schools"]
    assert _dropped([P1, "The plan has three parts:", *items, P2, P3]) == []
    assert _dropped([P1, P2, "Home", "World", "Business", "Sport", P3, P4]) == [2, 3, 4, 5]


def test_teasers_after_footer_are_dropped_by_position() -> None:
    lines = [P1, P2, P3, "Sign up for our daily newsletter", "Most read", "Council leader quits",
             "The leader of the council has resigned after a row over the library closure plan.",
             "Weather warning issued", "Heavy rain is expected across the region on Friday, forecasters say."]
    assert _dropped(lines) == [3, 4, 5, 6, 7, 8]


def test_article_resumes_after_inline_furniture() -> None:
    assert _dropped([P1, "Sign up to our newsletter", P2, P3, P4]) == [1]


def test_email_url_browser_notice_and_widget_credit() -> None:
    notice = ("You are using an outdated browser. Please upgrade your browser or enable JavaScript "
              "to improve your experience on this site.")
    lines = [P1, "Powered by automated translation", P2, P3, "jane.doe@example.com", "https://example.com/news", notice]
    assert _dropped(lines) == [1, 4, 5, 6]


def test_only_furniture_and_empty_input() -> None:
    assert classify_paragraphs([]) == []
    assert _dropped(["Copyright © 2015 BBC.", "Home", "News", "Sport", "editor@example.com"]) == [0, 1, 2, 3, 4]


def test_repeated_paragraph_is_dropped_once() -> None:
    assert _dropped([P1, P2, P1, P3, P4]) == [2]


def test_no_site_strings_are_hard_coded() -> None:
    """The detector is general: none of the seeds' site names or furniture texts appear in its source."""
    source = (Path(__file__).resolve().parent.parent / "qa" / "boilerplate.py").read_text(encoding="utf-8")
    for word in ("Independent", "Recruitment Genius", "iJobs", "BBC", "thenational", "Day In a Page", "Armani"):
        assert not re.search(re.escape(word), source, re.IGNORECASE), word
