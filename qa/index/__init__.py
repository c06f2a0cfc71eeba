"""The index directory, and the only code that knows it: build, save, load, check.

Where each concern lives (read the module's docstring for why it is built the way it is):

- ``layout``: every name in an index directory (CURRENT, v-*, .tmp-*, build.lock, .partial/, ray-shards/,
  the files of a version) and FORMAT_VERSION;
- ``lock``: the build lock (one writer per directory);
- ``manifest``: what a version records, and the checks of it (mismatch, damage, checksums);
- ``save``: writing a version atomically, pruning old ones, cleaning what crashes left;
- ``tables`` and ``load``: reading a version (passages and articles by row) into an :class:`IndexStore`;
- ``check``: `qa check`;
- ``lexical`` (BM25) and ``ann`` (FAISS index kinds): the two searchable structures a version holds;
- ``build`` (with ``status``: is the index current?), ``engine`` (who splits and embeds: ``LocalEngine``,
  ``ray.RayEngine``) and ``resume`` (keeping the work of a build that dies).

File helpers that are not specific to the index (atomic write, fsync, sha256) are in :mod:`qa.files`.

The names below are importable from ``qa.index`` directly; each is loaded on first use, so importing this
package loads neither numpy nor faiss.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "BuildReport": "build",
    "build_index": "build",
    "engine_named": "build",
    "IndexStatus": "status",
    "index_status": "status",
    "Engine": "engine",
    "LocalEngine": "engine",
    "IndexStore": "load",
    "load_index": "load",
    "save_index": "save",
    "IndexCheck": "check",
    "check_index": "check",
    "verify_index": "check",
    "index_lock": "lock",
    "read_manifest": "manifest",
    "FORMAT_VERSION": "layout",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'qa.index' has no attribute {name!r}")
    return getattr(importlib.import_module(f"qa.index.{module}"), name)
