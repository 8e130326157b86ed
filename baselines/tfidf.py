"""TF-IDF word and character n-grams with logistic regression: the strong, standard classical baseline."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from baselines.base import Baseline, BaselineParams, register
from methods.base import hp

if TYPE_CHECKING:  # scikit-learn loads in a second: imported where an estimator is built, not by `--list`
    from sklearn.pipeline import Pipeline


@dataclass
class TfidfParams(BaselineParams):
    C: float = hp(1.0, "inverse L2 regularization strength of the logistic regression")
    word_max_n: int = hp(2, "word n-grams of 1..word_max_n words")
    char_min_n: int = hp(2, "shortest character n-gram (char_wb: within word boundaries)")
    char_max_n: int = hp(5, "longest character n-gram")
    min_df: int = hp(2, "drop n-grams seen in fewer training texts than this")
    max_iter: int = hp(1000, "lbfgs iterations at most")

    def __post_init__(self) -> None:
        if not self.C > 0:
            raise ValueError(f"C must be > 0, got {self.C}")
        if not 1 <= self.char_min_n <= self.char_max_n or self.word_max_n < 1:
            raise ValueError("n-gram ranges must satisfy 1 <= char_min_n <= char_max_n and word_max_n >= 1")


@register("tfidf")
class Tfidf(Baseline):
    summary = "TF-IDF of word 1-2grams and char_wb 2-5grams (sublinear tf) + logistic regression (scikit-learn)"
    Params = TfidfParams

    def build(self, seed: int) -> Pipeline:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        p = self.params
        # sublinear tf (1 + log tf): a word repeated in a tweet is not that many times more telling
        features = FeatureUnion([
            ("word", TfidfVectorizer(ngram_range=(1, p.word_max_n), min_df=p.min_df, sublinear_tf=True)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(p.char_min_n, p.char_max_n),
                                     min_df=p.min_df, sublinear_tf=True)),
        ])
        return Pipeline([("features", features),
                         ("classifier", LogisticRegression(C=p.C, max_iter=p.max_iter, random_state=seed))])
