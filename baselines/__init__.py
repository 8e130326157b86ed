"""Classical baselines trained from scratch on the texts. Each registers itself under its CLI name on import."""
from baselines import tfidf, w2v  # noqa: F401  (explicit imports register the baselines)
from baselines.base import Baseline, BaselineParams, BaselineSpec, get, parse_spec, register, registered

__all__ = ["Baseline", "BaselineParams", "BaselineSpec", "get", "parse_spec", "register", "registered"]
