"""The numbers of a training run: nnU-Net v2's defaults, then the trainer config's overrides, then explicit
arguments (CLI flags, bundle values)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LR_SCHEDULES", "TrainingSettings", "resolve_settings"]

LR_SCHEDULES = ("per_iteration", "per_epoch")


@dataclass
class TrainingSettings:
    """Attributes are nnU-Net v2's defaults unless noted (DESIGN.md, "Numbers that are not negotiable").

    ``lr_schedule``: ``per_iteration`` (default: ``lr = initial_lr * (1 - step / total_steps) ** 0.9`` updated every
    iteration) or ``per_epoch`` (nnU-Net v2 exactly). ``val_iterations_per_epoch``: patch batches for the cheap
    per-epoch validation loss (None: a fifth of ``iterations_per_epoch``, nnU-Net's 50 for 250).
    ``augmentation_device``: ``cpu`` (loader workers) or ``device`` (the training device).
    """

    num_epochs: int = 1000
    iterations_per_epoch: int = 250
    val_iterations_per_epoch: int | None = None
    initial_lr: float = 0.01
    weight_decay: float = 3e-5
    momentum: float = 0.99
    lr_exponent: float = 0.9
    lr_schedule: str = "per_iteration"
    grad_clip_norm: float = 12.0
    batch_size: int = 2
    patch_size: list = field(default_factory=list)
    oversample_foreground_percent: float = 0.33
    enable_deep_supervision: bool = True
    mirror_axes: tuple | None = None
    val_every: int = 50
    num_workers: int | None = None
    augmentation_device: str = "cpu"
    seed: int = 12345

    def __post_init__(self) -> None:
        for name in ("num_epochs", "iterations_per_epoch", "batch_size", "val_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.val_iterations_per_epoch is None:
            self.val_iterations_per_epoch = max(1, self.iterations_per_epoch // 5)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.initial_lr <= 0:
            raise ValueError(f"initial_lr must be positive, got {self.initial_lr}")
        if not 0 <= self.oversample_foreground_percent <= 1:
            raise ValueError(f"oversample_foreground_percent must be in [0, 1], got {self.oversample_foreground_percent}")
        if self.augmentation_device not in ("cpu", "device"):
            raise ValueError(f"augmentation_device must be 'cpu' or 'device', got {self.augmentation_device!r}")
        self.patch_size = [int(p) for p in self.patch_size]

    @property
    def total_lr_steps(self) -> int:
        return self.num_epochs * (self.iterations_per_epoch if self.lr_schedule == "per_iteration" else 1)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def resolve_settings(configuration, trainer_config, **explicit: Any) -> TrainingSettings:
    """Defaults <- plans (batch and patch size) <- ``trainer_config.overrides()`` <- ``explicit`` (None ignored)."""
    values: dict[str, Any] = {"batch_size": configuration.batch_size, "patch_size": list(configuration.patch_size)}
    overrides = dict(trainer_config.overrides()) if trainer_config is not None else {}
    for dropped in ("optimizer", "lr_scheduler"):  # built by the trainer, not numbers
        overrides.pop(dropped, None)
    values.update(overrides)
    values.update({k: v for k, v in explicit.items() if v is not None})
    known = TrainingSettings.__dataclass_fields__
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
    if len(values["patch_size"]) != len(configuration.patch_size):
        raise ValueError(f"patch_size {values['patch_size']} has {len(values['patch_size'])} axes but configuration "
                         f"{configuration.name} is {len(configuration.patch_size)}D")
    return TrainingSettings(**values)
