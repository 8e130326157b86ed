"""Classical baselines trained from scratch on the texts. Each lives in its own module and registers itself under its
CLI name (the registry finds them by a scan of this folder, on first use, as it does the methods)."""
from baselines.base import BASELINES, Baseline, BaselineParams, BaselineSpec, get, parse_spec, register, registered

__all__ = ["BASELINES", "Baseline", "BaselineParams", "BaselineSpec", "get", "parse_spec", "register", "registered"]
