"""Training: the trainer (``nnUNetTrainer``), trainer configs (``monai_nnunet.training.configs``), handlers,
LR schedule, logging and checkpoints.

``nnUNetTrainer`` is loaded on first access, so ``import monai_nnunet.training.configs`` (used by ``-tr`` parsing)
stays light.
"""

__all__ = ["TrainingSettings", "TrainingSetupError", "nnUNetTrainer"]


def __getattr__(name: str):
    if name in __all__:
        from monai_nnunet.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'monai_nnunet.training' has no attribute {name!r}")
