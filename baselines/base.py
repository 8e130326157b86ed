"""The baseline contract (fit on texts, predict probabilities), its registry and its `NAME[:key=value...]` specs."""
from __future__ import annotations

import dataclasses
import importlib.util
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from methods.registry import Registry, SpecError
from methods.registry import registered as registered_methods
from methods.specs import parse_params

INSTALL_HINT = "pip install -e '.[baselines]'"


@dataclass
class BaselineParams:
    """Hyperparameters of a baseline. Subclasses declare theirs with `hp(default, help)`."""


class Baseline(ABC):
    """A classical text classifier trained from scratch on the training texts, beside the fine-tuning methods.

    The runner calls `fit(texts, labels, seed, num_labels)` once, then `predict_proba(texts)` on the test texts,
    and reads `fit_seconds`, `predict_seconds` and `describe()`. A subclass only says how to `build` its
    scikit-learn estimator; fitting, timing and the label-ordered probability columns are done here.
    """

    name: ClassVar[str] = ""  # set by @register; the CLI token and registry key
    summary: ClassVar[str] = ""  # one line for `--list`
    Params: ClassVar[type[BaselineParams]] = BaselineParams
    needs: ClassVar[tuple[str, ...]] = ()  # optional modules (from the `baselines` extra) it imports
    # The worker stages that run it (runners.job.stages): fit and test in one, instead of a method's train, evaluate.
    stages: ClassVar[tuple[str, ...]] = ("baseline",)

    def __init__(self, params: BaselineParams | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.model: Any = None  # the fitted estimator, after `fit`
        self.num_labels = 0
        self.fit_seconds = self.predict_seconds = 0.0  # wall time, s

    @abstractmethod
    def build(self, seed: int) -> Any:
        """A fresh scikit-learn estimator (usually a Pipeline over raw texts) whose every random part uses `seed`."""

    def fit(self, texts: list[str], labels: np.ndarray, seed: int, num_labels: int | None = None) -> None:
        """Train on `texts` with integer `labels` in 0..K-1. Give `num_labels` (K) when train may lack a class;
        by default K is the largest label + 1. The same seed and data give identical probabilities."""
        labels = np.asarray(labels)
        if len(texts) != len(labels):
            raise ValueError(f"{self.name}: {len(texts)} texts but {len(labels)} labels")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise ValueError(f"{self.name}: labels must be integers 0..K-1, got dtype {labels.dtype}")
        self.num_labels = int(num_labels if num_labels is not None else labels.max() + 1)
        if labels.max() >= self.num_labels:
            raise ValueError(f"{self.name}: label {labels.max()} is outside 0..{self.num_labels - 1}")
        if len(np.unique(labels)) < 2:
            raise ValueError(f"{self.name}: needs at least two classes in train, got {np.unique(labels).tolist()}")
        start = time.perf_counter()
        self.model = self.build(seed)
        self.model.fit(list(texts), labels)
        self.fit_seconds = time.perf_counter() - start

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """An n × K array of class probabilities, rows summing to 1, column k for label k. A class absent from
        train gets a column of zeros: the classifier never saw it, so it never predicts it."""
        if self.model is None:
            raise RuntimeError(f"{self.name}: predict_proba before fit")
        start = time.perf_counter()
        seen = self.model.predict_proba(list(texts))
        proba = np.zeros((len(texts), self.num_labels), dtype=np.float64)
        proba[:, self.model.classes_] = seen  # scikit-learn orders columns by the labels it saw in fit
        self.predict_seconds = time.perf_counter() - start
        return proba

    def describe(self) -> dict[str, Any]:
        """The resolved hyperparameters, as stored in every record."""
        return dataclasses.asdict(self.params)

    @classmethod
    def missing(cls) -> list[str]:
        """The optional modules this baseline needs that are not installed."""
        return [module for module in cls.needs if importlib.util.find_spec(module) is None]


BASELINES: Registry[type[Baseline]] = Registry("baseline", "baselines", base=Baseline, pattern=r"^[a-z][a-z0-9_-]*$",
                                               rule="lowercase letters, digits, _ and -")  # `w2v-logreg`
registered, get = BASELINES.registered, BASELINES.get


def register(name: str):
    """Class decorator: `@register("tfidf")` makes the baseline available by that name, unless a fine-tuning method
    has it (one `--methods` list names both kinds)."""
    if name in registered_methods():
        raise ValueError(f"baseline {name!r} has the name of a fine-tuning method")
    return BASELINES.register(name)


@dataclass(frozen=True)
class BaselineSpec:
    """A parsed `NAME[:key=value...]`: the label shown in tables, and the baseline built from it."""

    label: str
    baseline: Baseline

    @property
    def name(self) -> str:
        return self.baseline.name


def parse_spec(text: str) -> BaselineSpec:
    """`tfidf:C=4` → a BaselineSpec; values typed as in method specs, mistakes a one-line SpecError."""
    label = text.strip()
    name, *pairs = label.split(":")
    if not name:
        raise SpecError(f"empty baseline name in spec {text!r}")
    cls = get(name)
    if missing := cls.missing():
        raise SpecError(f"{name} needs {', '.join(missing)}: {INSTALL_HINT}")
    return BaselineSpec(label=label, baseline=cls(parse_params(label, name, cls.Params, pairs)))
