"""Training: the parts of a run's bundle (engine step, handlers, metric, LR schedule, checkpoints, run setup), the
trainer configs (``monai_nnunet.training.configs``) and the thin ``nnUNetTrainer`` front.

The functions here are the small public functions the run's ``train.yaml`` calls.
"""

from monai_nnunet.planning.plans import PlansManager
from monai_nnunet.training.cascade import predicted_next_stage_folder
from monai_nnunet.training.checkpoints import find_resume_checkpoint, resume_iteration
from monai_nnunet.training.distributed import (
    distributed_device,
    init_distributed,
    is_distributed,
    rank,
    rank_batch_share,
    rank_share,
    shutdown_distributed,
)
from monai_nnunet.training.engine import (
    NnUNetPrepareBatch,
    NnUNetSupervisedTrainer,
    full_resolution_output,
    prepare_network,
)
from monai_nnunet.training.final_validation import FinalValidation
from monai_nnunet.training.lr_scheduler import PolyLRScheduler
from monai_nnunet.training.metrics import CaseMeanDice, PseudoDice, dice_improved
from monai_nnunet.training.network_record import network_record
from monai_nnunet.training.output_folder import check_output_folder, write_results_folder_files
from monai_nnunet.training.run_setup import RunSetup, TrainingSetupError, check_flags, fold_split, prepare_run
from monai_nnunet.training.trainer import TrainingSettings, nnUNetTrainer
from monai_nnunet.utils.devices import resolve_device
from monai_nnunet.utils.files import load_json as read_json

__all__ = [
    "CaseMeanDice",
    "FinalValidation",
    "NnUNetPrepareBatch",
    "NnUNetSupervisedTrainer",
    "PolyLRScheduler",
    "PseudoDice",
    "RunSetup",
    "TrainingSettings",
    "TrainingSetupError",
    "check_flags",
    "check_output_folder",
    "dice_improved",
    "distributed_device",
    "find_resume_checkpoint",
    "fold_split",
    "full_resolution_output",
    "init_distributed",
    "is_distributed",
    "network_record",
    "nnUNetTrainer",
    "plans_configuration",
    "predicted_next_stage_folder",
    "prepare_network",
    "prepare_run",
    "rank",
    "rank_batch_share",
    "rank_share",
    "read_json",
    "resolve_device",
    "resume_iteration",
    "shutdown_distributed",
    "write_results_folder_files",
]


def plans_configuration(plans_file: str, configuration: str) -> dict:
    """The plans' configuration entry (``inherits_from`` resolved), for ``debug.json``."""
    return dict(PlansManager(plans_file).get_configuration(configuration).configuration)
