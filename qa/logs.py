"""How much qa says: logging, Python warnings and third-party progress bars, set up in one place.

The entry points (the ``qa`` command and ``python app.py``) call :func:`configure` once at start, before the
models are imported. Library code only logs through ``logging.getLogger(__name__)``; importing ``qa`` changes
no global state, so a program that uses the Python API keeps its own logging set-up.

=========  ==================================  =====================================================
verbosity  qa's own logs (``qa.*``)            other libraries
=========  ==================================  =====================================================
0          warnings and errors                 errors only; no Python warnings at all
1 (-v)     INFO                                warnings (logs, and Python's default warnings)
2 (-vv)    DEBUG                               INFO
=========  ==================================  =====================================================

Model-loading progress bars ("Loading weights") never show; our own progress bars (building, evaluating) are
not affected: they show whenever the work is long.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

FORMAT = "%(levelname)s %(name)s: %(message)s"
# (ours, theirs) logging levels per verbosity; anything above 2 is 2.
LEVELS = {
    0: (logging.WARNING, logging.ERROR),
    1: (logging.INFO, logging.WARNING),
    2: (logging.DEBUG, logging.INFO),
}


def _ours(name: str) -> bool:
    return name == "qa" or name.startswith("qa.")


class _Handler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (tests and servers swap it), and holds other libraries to
    ``theirs``: some set their own logger's level on import (bm25s sets DEBUG), so the root logger's level
    alone does not keep them quiet."""

    def __init__(self, theirs: int) -> None:
        super().__init__()
        self.theirs = theirs
        self.setFormatter(logging.Formatter(FORMAT))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.__init__ assigns it; the current stderr is used instead
        pass

    def filter(self, record: logging.LogRecord) -> bool:
        return (_ours(record.name) or record.levelno >= self.theirs) and super().filter(record)


def configure(verbosity: int = 0) -> None:
    """Set how much the command or app prints (see the module docstring); safe to call again."""
    ours, theirs = LEVELS[max(0, min(verbosity, 2))]
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(_Handler(theirs))
    root.setLevel(theirs)
    logging.getLogger("qa").setLevel(ours)
    _transformers(theirs)
    _no_loading_bars()
    # qa reports its own problems through logging, never warnings.warn: the Python warnings a user would see
    # are the libraries' (deprecations, tracing notes), even those attributed to our lines by `stacklevel`.
    # At -v and above Python's default filters stay; `python -W ...` or PYTHONWARNINGS always win.
    if verbosity == 0 and not sys.warnoptions:
        warnings.simplefilter("ignore")


def _transformers(level: int) -> None:
    """transformers logs through its own handler (it does not propagate) and sets its level on import."""
    os.environ["TRANSFORMERS_VERBOSITY"] = logging.getLevelName(level).lower()
    if "transformers" in sys.modules:
        logging.getLogger("transformers").setLevel(level)


def _no_loading_bars() -> None:
    """Model-loading bars ("Loading weights") come from transformers and huggingface_hub, which read this
    switch when they are imported; when they already are (gradio imports huggingface_hub), tell them too.
    A user who sets HF_HUB_DISABLE_PROGRESS_BARS=0 keeps them."""
    if os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1") == "0":
        return
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
