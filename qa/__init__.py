"""qa: short answers with their sources from a folder of articles.

    from qa import Pipeline, build_index
    build_index("seeds", "index")
    res = Pipeline.load("index").ask("Who backed the rebels?")  # Retriever: the same class, its old name
    res.answers[0].text, res.answers[0].confidence, res.answers[0].sources[0].doc_id

Importing qa loads no model; models load lazily on first use.
"""

from qa.config import DEFAULT_CONFIG, Config
from qa.errors import (
    ArticleError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexWriteError,
    IngestError,
    ModelLoadError,
    QAError,
    RayNotInstalledError,
)
from qa.types import Answer, Document, Hit, Paragraph, Passage, Response, Source
from qa.version import __version__

__all__ = [
    "DEFAULT_CONFIG",
    "Answer",
    "ArticleError",
    "BuildReport",
    "Config",
    "Document",
    "Hit",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexStatus",
    "IndexWriteError",
    "IngestError",
    "ModelLoadError",
    "Paragraph",
    "Passage",
    "Pipeline",
    "QAError",
    "RayNotInstalledError",
    "Response",
    "Retriever",
    "Source",
    "__version__",
    "build_index",
    "index_status",
]


def __getattr__(name: str):
    # Pipeline (alias Retriever) and build_index pull in numpy/faiss; import them on first use so `import qa`
    # stays cheap.
    if name in ("Pipeline", "Retriever"):
        from qa import pipeline

        return getattr(pipeline, name)
    if name in ("build_index", "index_status", "BuildReport", "IndexStatus"):
        from qa.index import build

        return getattr(build, name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
