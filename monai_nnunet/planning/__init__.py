"""Experiment planning: fingerprint -> plans (nnU-Net v2's rules and schema), with the default planner and the
residual-encoder presets (``nnUNetPlannerResEncM`` / ``L`` / ``XL``, ``ResEncUNetPlanner``)."""

from monai_nnunet.planning.planner import ExperimentPlanner
from monai_nnunet.planning.plans import ConfigurationManager, PlansError, PlansManager, load_plans
from monai_nnunet.planning.resenc_planners import (
    ResEncUNetPlanner,
    nnUNetPlannerResEncL,
    nnUNetPlannerResEncM,
    nnUNetPlannerResEncXL,
)

__all__ = [
    "ConfigurationManager",
    "ExperimentPlanner",
    "PlansError",
    "PlansManager",
    "ResEncUNetPlanner",
    "extract_fingerprint",
    "load_plans",
    "nnUNetPlannerResEncL",
    "nnUNetPlannerResEncM",
    "nnUNetPlannerResEncXL",
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
