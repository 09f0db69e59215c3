"""A cheap lexical baseline for targeted selection: TF-IDF similarity to the target records.

``tfidf_similarity`` is the cosine between a record's TF-IDF vector (its turns and response,
word unigrams and bigrams, sublinear term frequencies, fitted on the records and the target
together) and the mean of the target records' unit vectors. No model is needed: it is what a
targeted gradient or representation score must beat to be worth its cost. scikit-learn does the
vectorising (the ``lexical`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradspec.data import Record
from gradspec.errors import ConfigError
from gradspec.extras import require
from gradspec.score.context import ScoreContext
from gradspec.score.outcome import Scored, failed
from gradspec.score.registry import register_scorer

FIELDS = ("tfidf_similarity",)


def text_of(record: Record) -> str:
    """Everything a record says: its turns and its response."""
    return "\n".join([*(m.content for m in record.messages), record.response])


def tfidf_cosines(texts: Sequence[str], targets: Sequence[str]) -> np.ndarray:
    """Cosine of each text's TF-IDF vector with the mean of the targets' unit vectors (0 for a text
    that shares no term with the vocabulary)."""
    text = require("sklearn.feature_extraction.text", "lexical", "tfidf_similarity")
    vectorizer = text.TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)
    matrix = vectorizer.fit_transform([*texts, *targets])  # rows are unit vectors (norm="l2")
    centre = np.asarray(matrix[len(texts) :].mean(axis=0)).ravel()
    norm = float(np.linalg.norm(centre))
    if norm == 0.0:
        raise ConfigError("--target: the target records have no words TF-IDF can weigh")
    return np.asarray(matrix[: len(texts)] @ (centre / norm)).ravel()


@register_scorer("tfidf", FIELDS, needs_model=False)
def tfidf_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    """TF-IDF cosine of each record with the ``--target`` records' centre."""
    target, read = ctx.target_records()
    if not target:
        raise ConfigError(f"--target {ctx.config.target}: no usable record ({read} read)")
    texts = [text_of(r) for r in records]
    if not any(t.strip() for t in texts):
        return {r.index: failed(FIELDS, f"record {r.index}: no text") for r in records}
    cosines = tfidf_cosines(texts, [text_of(r) for r in target])
    return {r.index: Scored({"tfidf_similarity": float(c)}) for r, c in zip(records, cosines, strict=True)}
