"""The articles folder as a user changes it: validate, add and remove articles, rebuild the index, roll back.

One owner for the rules of changing the folder, so the web UI (``qa.ui``) and the command line (``qa serve``
goes through the UI) apply the same ones. What counts as an article (its suffixes, size limit, encoding and the
format's own checks) is not decided here: every question goes to the ingest format registry
(``article_suffixes``, ``format_for(name).limit()``, ``check_upload``), so an upload is accepted exactly when
``qa build`` would read the file. What this module adds is what only a *change* needs:

- a file name that is safe to create in the folder (no paths, no hidden files, a plain character set);
- all-or-nothing changes: uploads are checked before any is written, written atomically, and when the rebuild
  fails or skips one of them, the folder is put back and rebuilt, so the folder and the index always agree;
- removal that keeps a copy. Removed articles are moved to ``<articles>/.qa-removed/`` (:data:`KEPT_DIR`):
  beside the articles they came from, so deleting or rebuilding the index never deletes them (they used to
  live in ``<index>/removed-articles/``). It is a hidden folder, which the folder walk of every build ignores
  (the ingest rule for names starting with "."), it is on the articles' filesystem, so the move is a rename,
  and it needs no write access to the folder's parent. Copies found in the old location are moved there when
  a :class:`Library` is opened.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from qa.config import DEFAULT_CONFIG, Config
from qa.errors import ArticleError, IngestError
from qa.files import write_atomic
from qa.ingest import Format, article_files, article_suffixes, check_upload, format_for

if TYPE_CHECKING:  # both pull in numpy/faiss: imported where first needed, through qa's public names
    from qa import BuildReport, IndexStatus, Retriever

log = logging.getLogger(__name__)

KEPT_DIR = ".qa-removed"  # inside the articles folder; hidden, so builds never read it
LEGACY_KEPT_DIR = "removed-articles"  # where kept copies were, inside the index directory (deleted with it)
# A plain file name: starts with a letter or digit (so never hidden, never "..") and has no separators.
_SAFE_NAME = re.compile(r"[^\W_][\w .,()'&+-]{0,150}", re.UNICODE)


# ------------------------------------------------------------------------------------ what may be uploaded


def accepted_types() -> str:
    """The article suffixes an upload may have, as the messages list them (".txt, .md, .html, ...")."""
    return ", ".join(article_suffixes())


def article_formats() -> list[Format]:
    """The registry's formats of the accepted suffixes, in its order, each once."""
    found = (format_for(f"article{suffix}") for suffix in article_suffixes())
    return list(dict.fromkeys(fmt for fmt in found if fmt is not None))


def max_upload_bytes(config: Config) -> int:
    """The largest file the UI takes in: the largest format's limit (read_upload applies each format's own)."""
    return max(fmt.limit(config) for fmt in article_formats())


def check_article_name(name: str) -> str:
    """Return ``name`` if it is a safe file name of an article format; raise ArticleError saying what is wrong.

    The name is checked here (it becomes a path in the folder); which suffixes are articles is the ingest
    registry's answer, so the upload accepts exactly what ``qa build`` reads.
    """
    if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
        raise ArticleError(f"{name!r} is not a plain file name: upload a file, not a path.")
    if name.startswith("."):
        raise ArticleError(f"{name!r} is a hidden file: hidden files are not accepted.")
    if Path(name).suffix.lower() not in article_suffixes():
        raise ArticleError(f"{name!r}: only {accepted_types()} files are accepted.")
    if not _SAFE_NAME.fullmatch(name):
        raise ArticleError(
            f"{name!r}: use a name of letters, digits, spaces and . , - _ ( ) ' & + only (at most 150 characters)."
        )
    return name


def read_upload(name: str, path: Path, config: Config) -> bytes:
    """The uploaded file's bytes if a build would read them as an article; ArticleError with the reason otherwise.

    ``name`` has passed check_article_name. Its format's size limit is checked before the bytes are read;
    the rest (UTF-8 for the text formats, an encrypted or scanned PDF, a Word zip bomb, a page with no main
    text...) is ``qa.ingest.check_upload``, the checks of the build itself.
    """
    fmt = format_for(name)
    if fmt is None or fmt.read is None:  # check_article_name refuses these; kept so this never reads one
        raise ArticleError(f"{name!r}: only {accepted_types()} files are accepted.")
    limit = fmt.limit(config)
    size = path.stat().st_size
    if size > limit:
        raise ArticleError(f"Cannot add {name}: {fmt.too_large(size, config)}")
    with path.open("rb") as handle:
        data = handle.read(limit + 1)  # check_upload refuses it if it grew past the limit since stat()
    try:
        check_upload(name, data, config)
    except IngestError as exc:
        raise ArticleError(str(exc)) from None
    return data


# ------------------------------------------------------------------------------ the index over the folder


def prepare_index(seeds: Path, index: Path, config: Config = DEFAULT_CONFIG, progress: bool = False) -> list[str]:
    """Build the index when it is missing or stale; returns what was done, one line per item, for the log."""
    from qa import build_index, index_status

    status = index_status(seeds, index, config)
    if status.current:
        return [f"Index {index} is up to date with {seeds}."]
    lines = [f"Index {index}: {status.reason}; building from {seeds} ..."]
    report = build_index(seeds, index, config, progress=progress)
    for label, names in (("added", report.added), ("changed", report.changed), ("removed", report.removed)):
        lines += [f"  {label}: {name}" for name in names]
    lines += [f"  skipped {s.path}: {s.reason}" for s in report.skipped]
    lines.append(report.summary())
    return lines


class CurrentRetriever:
    """The Retriever a server answers from. Rebuilds swap in a new one; an ask keeps the one it started with."""

    def __init__(self, retriever: Retriever) -> None:
        self._lock = threading.Lock()
        self._retriever = retriever

    def get(self) -> Retriever:
        with self._lock:
            return self._retriever

    def swap(self, retriever: Retriever) -> None:
        with self._lock:
            self._retriever = retriever


class Library:
    """The articles folder and its index: rebuild, add and remove articles. One change at a time.

    ``current`` is the live Retriever of a server: after a rebuild that made a new index version it is
    swapped for one loaded from that version. Without it (a script), the index is rebuilt and nothing is loaded.
    """

    def __init__(self, seeds: Path, index: Path, config: Config = DEFAULT_CONFIG,
                 current: CurrentRetriever | None = None) -> None:
        self.seeds, self.index, self.config, self.current = Path(seeds), Path(index), config, current
        self._lock = threading.Lock()
        self._adopt_legacy_kept_copies()

    @property
    def kept_dir(self) -> Path:
        """Where removed articles are kept (see the module docstring)."""
        return self.seeds / KEPT_DIR

    def status(self) -> IndexStatus:
        """Whether the index is current with the folder (qa.index_status), for the UI's index panel."""
        from qa import index_status

        return index_status(self.seeds, self.index, self.config)

    def articles(self) -> list[str]:
        """Article files in the folder (relative paths): the files a build reads (qa.ingest.article_files)."""
        return article_files(self.seeds)

    def rebuild(self, progress: bool = False) -> str:
        with self._lock:
            return describe(self._rebuild_locked(progress))

    def add(self, uploads: Sequence[Path], overwrite: bool, progress: bool = False) -> str:
        """Copy uploaded files into the folder and rebuild; on any problem nothing changes (ArticleError)."""
        if not self.seeds.is_dir():
            raise ArticleError(f"The articles source {self.seeds} is not a folder: files cannot be added to it.")
        if not uploads:
            raise ArticleError(f"Choose one or more article files ({accepted_types()}) first.")
        with self._lock:
            problems, accepted, seen = [], [], set()
            for upload in uploads:
                name = Path(upload).name  # Gradio keeps the uploaded file's base name
                try:
                    check_article_name(name)
                    data = read_upload(name, Path(upload), self.config)
                except ArticleError as exc:
                    problems.append(str(exc))
                    continue
                target = self.seeds / name
                if name in seen:
                    problems.append(f"{name} was uploaded twice.")
                elif target.is_symlink() or (target.exists() and not target.is_file()):
                    problems.append(f"{name} exists in the folder and is not a plain file.")
                elif target.exists() and not overwrite:
                    problems.append(f"{name} already exists: tick 'Overwrite' to replace it.")
                seen.add(name)
                accepted.append((target, data))
            if problems:
                raise ArticleError("Nothing was added.\n" + "\n".join(problems))

            backups = {t: (t.read_bytes() if t.exists() else None) for t, _ in accepted}
            for target, data in accepted:
                _write_atomically(target, data)
            try:
                report = self._rebuild_locked(progress)
                names = {t.name for t, _ in accepted}
                refused = [s for s in report.skipped if Path(str(s.path)).name in names]
                if refused:
                    raise ArticleError("Nothing was added.\n" + "\n".join(
                        f"{Path(str(s.path)).name}: {s.reason}" for s in refused))
            except BaseException:
                self._restore(backups)
                raise
        return f"Added {', '.join(t.name for t, _ in accepted)}.\n{describe(report)}"

    def remove(self, name: str | None, progress: bool = False) -> str:
        """Move an article out of the folder (into :attr:`kept_dir`) and rebuild; put it back if that fails."""
        with self._lock:
            articles = self.articles()
            if not name:
                raise ArticleError("Choose an article to remove first.")
            if name not in articles:  # a whitelist: also refuses paths such as ../x.txt
                raise ArticleError(f"{name!r} is not an article in the folder.")
            if len(articles) == 1:
                raise ArticleError("This is the last article: the index needs at least one.")
            source = self.seeds / name
            self.kept_dir.mkdir(exist_ok=True)
            kept = self.kept_dir / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{source.name}"
            shutil.move(source, kept)
            try:
                report = self._rebuild_locked(progress)
            except BaseException:
                shutil.move(kept, source)
                self._restore({})
                raise
        return f"Removed {name} (a copy is kept in {kept}).\n{describe(report)}"

    def _rebuild_locked(self, progress: bool) -> BuildReport:
        from qa import build_index

        report = build_index(self.seeds, self.index, self.config, progress=progress)
        if self.current is not None and report.version != self.current.get().store.version:
            from qa import Retriever

            self.current.swap(Retriever.load(self.index, self.config))
        log.info("Rebuilt %s: %s", self.index, report.summary())
        return report

    def _restore(self, backups: Mapping[Path, bytes | None]) -> None:
        for target, data in backups.items():
            if data is None:
                target.unlink(missing_ok=True)
            else:
                _write_atomically(target, data)
        try:
            self._rebuild_locked(progress=False)
        except Exception:  # the restored folder built before; log and keep the live index
            log.exception("Rebuild after restoring %s failed", self.seeds)

    def _adopt_legacy_kept_copies(self) -> None:
        """Move copies kept in ``<index>/removed-articles/`` (where older versions put them) to kept_dir,
        so deleting the index no longer deletes them. Best effort: a copy that cannot be moved stays."""
        legacy = self.index / LEGACY_KEPT_DIR
        if not legacy.is_dir() or not self.seeds.is_dir():
            return
        moved = 0
        for old in sorted(legacy.iterdir()):
            new = self.kept_dir / old.name
            try:
                if not new.exists():
                    self.kept_dir.mkdir(exist_ok=True)
                    shutil.move(old, new)
                    moved += 1
            except OSError as exc:
                log.warning("Cannot move the kept copy %s to %s: %s", old, self.kept_dir, exc)
        if moved:
            log.info("Moved %d removed article(s) from %s to %s", moved, legacy, self.kept_dir)
        try:
            legacy.rmdir()
        except OSError:  # not empty: a copy stayed (already logged) or a name was taken
            pass


def describe(report: BuildReport) -> str:
    """A build's outcome for the user: the summary, then each skipped file with the reason."""
    return report.summary() + "".join(f"\nSkipped {s.path}: {s.reason}" for s in report.skipped)


def _write_atomically(target: Path, data: bytes) -> None:
    """The whole file or the old one, under a hidden temporary name (``.upload-*``) that builds ignore."""
    write_atomic(target, data, tmp=target.with_name(f".upload-{os.getpid()}-{threading.get_ident()}.tmp"))
