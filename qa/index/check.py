"""`qa check`: everything a load checks, and more, reported as a list of problems instead of raised.

A load stops at the first kind of damage; `qa check` wants all of them, plus files the manifest does not
list (a load ignores those), with the live version, model and counts, so the user sees what is wrong before
running `qa build` to repair it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.config import Config
from qa.errors import IndexCorruptError, IndexNotFoundError
from qa.index.layout import ENCODER_MODEL, FORMAT_VERSION, MANIFEST, QUERY_ENCODER
from qa.index.load import consistency_problems, read_version
from qa.index.manifest import (
    file_problems,
    manifest_problems,
    manifest_shape_problems,
    query_encoder_problems,
    read_manifest,
    unlisted_files,
)


@dataclass
class IndexCheck:
    """What `qa check` found: the live version, what it holds, the files checked, and every problem."""

    index_dir: Path
    version: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    files_checked: list[str] = field(default_factory=list)  # relative to the version directory
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """What `qa check` prints: version, model, counts, files checked, then each problem and the fix."""
        m = self.manifest
        out = [f"index: {self.index_dir}"]
        if self.version:
            out.append(f"version: {self.version} (created {m.get('created', '?')}, "
                       f"built in {m.get('build_seconds', '?')} s, format {m.get('format_version', '?')})")
            package = f" ({m['model_package']} {m.get('model_package_version')})" if m.get("model_package") else ""
            out.append(f"model: {m.get('model_name', '?')}{package}, dimension {m.get('dimension', '?')}")
            encoder = m.get(QUERY_ENCODER)
            if isinstance(encoder, dict):
                out.append(f"query encoder: {ENCODER_MODEL} ({encoder.get('runtime')} {encoder.get('precision')}, "
                           f"max {encoder.get('max_seq_length')} tokens)")
            counts = m.get("counts") if isinstance(m.get("counts"), dict) else {}
            out.append(f"contents: {counts.get('documents', '?')} documents, {counts.get('passages', '?')} passages")
        if self.files_checked:
            out.append(f"files checked: {len(self.files_checked)} ({', '.join(self.files_checked)})")
        if self.ok:
            out.append("problems: none (checksums, manifest, counts and cross-references agree)")
            return out
        out.append(f"problems: {len(self.problems)}")
        out += [f"  - {problem}" for problem in self.problems]
        out.append(f"Run `qa build --articles DIR --index {self.index_dir}` to repair the index.")
        return out


def check_index(index_dir: str | Path, config: Config) -> IndexCheck:
    """Check the live index as thoroughly as a load does, and more (unlisted files), without raising."""
    report = IndexCheck(Path(index_dir))
    try:
        version_dir, manifest = read_manifest(report.index_dir)
    except (IndexNotFoundError, IndexCorruptError) as exc:
        report.problems.append(str(exc))
        return report
    report.version, report.manifest = version_dir.name, manifest
    shape = manifest_shape_problems(manifest) if manifest.get("format_version") == FORMAT_VERSION else []
    report.problems += manifest_problems(manifest, config) + shape
    if not shape:
        report.problems += query_encoder_problems(manifest, config)
    checksums = manifest.get("checksums")
    if isinstance(checksums, dict):
        report.files_checked = [MANIFEST] + sorted(str(name) for name in checksums)
    report.problems += file_problems(version_dir, manifest) + unlisted_files(version_dir, manifest)
    if report.problems:
        return report
    try:
        store = read_version(report.index_dir, version_dir, manifest, mmap=True)
    except IndexCorruptError as exc:
        report.problems.append(str(exc))
        return report
    report.problems += consistency_problems(store)
    return report


def verify_index(index_dir: str | Path, config: Config) -> list[str]:
    """Every problem found with the index ([] when it is healthy)."""
    return check_index(index_dir, config).problems
