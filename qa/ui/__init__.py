"""The web UI package: ``main`` (``python app.py``, ``qa serve``) and ``build_app`` (tests, scripts).

- ``qa.ui.app``: Gradio components wired to the public ``qa`` API and to ``qa.library``; flags and start-up.
- ``qa.ui.render``: the HTML of each panel, pure functions (a new panel's markup goes here).
- ``qa.ui.style``: the CSS and the theme.

``main`` and ``build_app`` are imported on first use, so the pure rendering functions can be imported (and
tested) without loading Gradio's server side first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_app", "main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from qa.ui import app

        return getattr(app, name)
    raise AttributeError(f"module 'qa.ui' has no attribute {name!r}")
