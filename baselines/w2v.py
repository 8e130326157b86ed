"""The tweets notebook's baselines: mean Word2Vec vectors (gensim) under logistic regression, an SVM, a forest."""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from baselines.base import Baseline, BaselineParams, register
from methods.base import hp

if TYPE_CHECKING:  # scikit-learn loads in a second: imported where an estimator is built, not by `--list`
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline


@dataclass
class W2VParams(BaselineParams):
    vector_size: int = hp(100, "Word2Vec dimensions")
    window: int = hp(5, "Word2Vec context window, words either side")
    min_count: int = hp(1, "ignore words seen fewer times in train")
    epochs: int = hp(5, "Word2Vec passes over the training texts")

    def __post_init__(self) -> None:
        for key in ("vector_size", "window", "min_count", "epochs"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")


class W2VBaseline(Baseline):
    """Mean Word2Vec features under a scikit-learn classifier; a subclass says which classifier."""

    Params = W2VParams
    needs = ("gensim",)

    @abstractmethod
    def classifier(self, seed: int) -> Any:
        """A fresh scikit-learn classifier seeded with `seed`."""

    def build(self, seed: int) -> Pipeline:
        from sklearn.pipeline import Pipeline

        from baselines._vectors import MeanWordVectors

        p = self.params
        features = MeanWordVectors(p.vector_size, p.window, p.min_count, p.epochs, seed=seed)
        return Pipeline([("features", features), ("classifier", self.classifier(seed))])


@dataclass
class W2VLinearParams(W2VParams):
    C: float = hp(1.0, "inverse regularization strength")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.C > 0:
            raise ValueError(f"C must be > 0, got {self.C}")


@register("w2v-logreg")
class W2VLogReg(W2VBaseline):
    summary = "mean Word2Vec vectors (gensim, trained on train) + logistic regression"
    Params = W2VLinearParams

    def classifier(self, seed: int) -> LogisticRegression:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.params.C, max_iter=1000, random_state=seed)


@register("w2v-svm")
class W2VSvm(W2VBaseline):
    summary = "mean Word2Vec vectors (gensim) + RBF SVM, sigmoid-calibrated probabilities (slow: O(n²) in train rows)"
    Params = W2VLinearParams

    def classifier(self, seed: int) -> CalibratedClassifierCV:
        # The notebook's SVC(probability=True), as scikit-learn 1.9 deprecates it for: Platt sigmoids fitted on
        # 5-fold cross-validated scores, then one SVC on all rows. The folds are not shuffled: nothing is random.
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        return CalibratedClassifierCV(SVC(C=self.params.C), method="sigmoid", cv=5, ensemble=False)


@dataclass
class W2VForestParams(W2VParams):
    trees: int = hp(200, "trees in the forest")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.trees < 1:
            raise ValueError(f"trees must be >= 1, got {self.trees}")


@register("w2v-rf")
class W2VForest(W2VBaseline):
    summary = "mean Word2Vec vectors (gensim) + random forest"
    Params = W2VForestParams

    def classifier(self, seed: int) -> RandomForestClassifier:
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=self.params.trees, random_state=seed)
