"""Experiment planning: fingerprint -> plans (nnU-Net v2's rules and schema)."""

from monai_nnunet.planning.planner import ExperimentPlanner
from monai_nnunet.planning.plans import ConfigurationManager, PlansError, PlansManager, load_plans

__all__ = [
    "ConfigurationManager",
    "ExperimentPlanner",
    "PlansError",
    "PlansManager",
    "extract_fingerprint",
    "load_plans",
    "plan_and_preprocess",
    "plan_experiment",
    "preprocess",
]

_API = ("extract_fingerprint", "plan_and_preprocess", "plan_experiment", "preprocess")


def __getattr__(name: str):
    # the pipeline functions import preprocessing, which imports plans from here: load them on first use
    if name in _API:
        from monai_nnunet.planning import api

        return getattr(api, name)
    raise AttributeError(f"module 'monai_nnunet.planning' has no attribute {name!r}")
