"""Mean Word2Vec features as a scikit-learn transformer, for the w2v baselines (baselines.w2v); a module of its own
because the class subclasses scikit-learn's, which `import baselines` (and so `--list`) must not load."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class MeanWordVectors(TransformerMixin, BaseEstimator):
    """Texts → the mean of their words' Word2Vec vectors, trained in `fit` on those texts only.

    A text with no known word maps to zeros. One worker thread and `seed` make the vectors reproducible.
    """

    def __init__(self, vector_size: int = 100, window: int = 5, min_count: int = 1, epochs: int = 5,
                 seed: int = 0) -> None:
        self.vector_size, self.window, self.min_count, self.epochs, self.seed = (
            vector_size, window, min_count, epochs, seed)

    def fit(self, texts: list[str], y: Any = None) -> MeanWordVectors:
        from gensim.models import Word2Vec  # the optional `baselines` extra: imported only when used

        model = Word2Vec(_tokens(texts), vector_size=self.vector_size, window=self.window,
                         min_count=self.min_count, epochs=self.epochs, workers=1, seed=self.seed)
        self.wv_ = model.wv  # only the vectors; the training state would just hold memory
        return self

    def transform(self, texts: list[str]) -> np.ndarray:
        zeros = np.zeros(self.vector_size, dtype=np.float32)
        # raw vectors averaged, as mean-vector features usually are (gensim's default unit-normalizes each first)
        means = [self.wv_.get_mean_vector(words, pre_normalize=False) if words else zeros for words in _tokens(texts)]
        # float64: on gensim's float32 the classifiers' probabilities would sum to 1 only within ~1e-7
        return np.stack(means).astype(np.float64)


def _tokens(texts: list[str]) -> list[list[str]]:
    from gensim.utils import simple_preprocess  # lowercases, splits on non-letters, drops 1-letter tokens

    return [simple_preprocess(text) for text in texts]
