"""Compatibility names: the retrieval stages now live in qa.search and the class that answers in qa.pipeline.

``from qa.retrieve import Retriever`` (and the stage functions) keeps working for existing scripts; new code
imports from qa.search / qa.pipeline (or ``from qa import Pipeline``).
"""

from qa.pipeline import NO_WORDS_NOTICE, Pipeline, Retriever
from qa.search import MODES, Mode, dense, diverse, fuse, sparse

__all__ = ["MODES", "NO_WORDS_NOTICE", "Mode", "Pipeline", "Retriever", "dense", "diverse", "fuse", "sparse"]
