"""The page's look: the CSS of every HTML panel and the Gradio theme (the system's own fonts).

Kept apart from the markup (qa.ui.render) and the wiring (qa.ui.app) so a change of colour or spacing is one
file; the class names here are the ones render.py writes.
"""

from __future__ import annotations

import gradio as gr

# Scoped to each gr.HTML component by Gradio (css_template); it is evaluated as a JS template literal, so no
# backticks, backslashes or dollar-brace sequences here. Colours use the theme's variables (dark mode).
CSS = """
font-size: 15px; line-height: 1.5;
* { box-sizing: border-box; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
p { margin: .3rem 0; }
code { font-family: var(--font-mono); font-size: .85em; overflow-wrap: anywhere; }
mark { background: #fde68a; color: #111; padding: 0 .1em; border-radius: 2px; }
.qa-hint, .qa-meta, .qa-muted { color: var(--body-text-color-subdued); }
.qa-meta { font-size: .9rem; margin-bottom: .6rem; overflow-wrap: anywhere; }
.qa-notice { border-left: 4px solid #d97706; padding: .3rem .7rem; margin: .5rem 0; }
.qa-error { border-left: 4px solid #dc2626; padding: .3rem .7rem; margin: .5rem 0; }
.qa-ok { border-left: 4px solid #16a34a; padding: .3rem .7rem; margin: .5rem 0; }
.qa-card, .qa-abstain, .qa-conflict {
  border: 1px solid var(--border-color-primary); border-radius: 10px; padding: .9rem 1rem;
  margin: 0 0 .9rem; background: var(--background-fill-primary); max-width: 100%;
}
.qa-abstain { border-left: 5px solid #6b7280; }
.qa-weak { border: 1px dashed var(--border-color-primary); border-left: 5px solid #9ca3af; border-radius: 10px;
  padding: .9rem 1rem; margin: 0 0 .9rem; background: var(--background-fill-primary); max-width: 100%; }
.qa-weak-label { font-size: .8rem; font-weight: 600; letter-spacing: .04em; text-transform: uppercase;
  color: var(--body-text-color-subdued); margin: 0 0 .2rem; }
.qa-weak .qa-answer-text { font-size: 1.25rem; font-weight: 600; }
mark.qa-sentence { background: #fef3c7; }
mark.qa-sentence mark { background: #fde68a; font-weight: 600; }
.qa-conflict { border-left: 5px solid #dc2626; }
.qa-answer-text { font-size: 1.45rem; font-weight: 700; overflow-wrap: anywhere; margin: 0 0 .3rem; }
.qa-rank { color: var(--body-text-color-subdued); font-size: .9rem; font-weight: 400; margin-right: .3rem; }
.qa-conf { display: flex; align-items: center; gap: .6rem; flex-wrap: wrap; font-size: .9rem; }
.qa-bar { width: 10rem; max-width: 50%; height: .55rem; border-radius: 99px; overflow: hidden;
  background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); }
.qa-bar > span { display: block; height: 100%; }
.qa-high .qa-bar > span { background: #16a34a; }
.qa-medium .qa-bar > span { background: #d97706; }
.qa-low .qa-bar > span { background: #dc2626; }
.qa-flag { color: #dc2626; font-size: .85rem; font-weight: 600; }
.qa-source { border-top: 1px solid var(--border-color-primary); padding-top: .6rem; margin-top: .6rem; }
.qa-source-head { display: flex; flex-wrap: wrap; gap: .2rem .6rem; align-items: baseline; }
.qa-title { font-weight: 600; overflow-wrap: anywhere; }
.qa-passage { margin: .4rem 0; padding: .3rem .7rem; border-left: 3px solid var(--border-color-primary);
  white-space: pre-line; overflow-wrap: anywhere; }
details.qa-article > summary { cursor: pointer; color: var(--link-text-color, #2563eb); font-size: .9rem; }
.qa-article-text { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 28rem; overflow-y: auto;
  padding: .5rem .7rem; background: var(--background-fill-secondary); border-radius: 6px; }
.qa-sides { display: flex; flex-wrap: wrap; gap: .8rem; }
.qa-side { flex: 1 1 16rem; min-width: 0; border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: .6rem .8rem; }
.qa-table-wrap { overflow-x: auto; max-width: 100%; margin-bottom: .8rem; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { border-bottom: 1px solid var(--border-color-primary); padding: .25rem .45rem; text-align: left;
  vertical-align: top; }
td.qa-num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.qa-stats { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; margin: .3rem 0 .6rem; }
.qa-stats b { font-size: 1.1rem; }
@media (max-width: 600px) { .qa-answer-text, .qa-weak .qa-answer-text { font-size: 1.2rem; }
  .qa-bar { width: 6rem; } }
"""


# The system's own sans-serif and monospace faces: nothing is fetched, and every letter of a word comes from
# the same face. (Gradio's default theme serves a "Source Sans Pro" SemiBold file that maps only A, B and some
# Cyrillic letters: bold text took its A and B from it and every other letter from a fallback face, so the A
# of "Ask the articles" and "Assad" looked thinner than the rest of the word.)
SANS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Noto Sans", "Liberation Sans",
        "Arial", "sans-serif")
MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "DejaVu Sans Mono",
        "monospace")


def theme() -> gr.themes.Base:
    """Gradio's default theme with the system fonts above (nothing fetched from the network)."""
    return gr.themes.Default(font=list(SANS), font_mono=list(MONO))
