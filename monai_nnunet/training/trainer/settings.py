"""The numbers of a training run, named as the run's bundle names them: nnU-Net v2's defaults, then the plans'
batch and patch size, then the trainer config's overrides, then explicit arguments (CLI flags)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LR_SCHEDULES", "SETTING_ALIASES", "TrainingSettings", "resolve_settings"]

LR_SCHEDULES = ("per_iteration", "per_epoch")
#: older keyword names of the Python API -> the bundle's names
SETTING_ALIASES = {"num_epochs": "epochs", "val_every": "val_interval", "enable_deep_supervision": "deep_supervision",
                   "val_iterations_per_epoch": "val_iterations"}


@dataclass
class TrainingSettings:
    """Attributes are nnU-Net v2's defaults unless noted (DESIGN.md, "Numbers that are not negotiable"); each is the
    bundle id of the same name.

    ``lr_schedule``: ``per_iteration`` (default) or ``per_epoch`` (nnU-Net v2 exactly). ``val_iterations``: patch
    batches for the per-epoch validation loss (None: a fifth of ``iterations_per_epoch``, nnU-Net's 50 for 250).
    ``augmentation_device``: ``cpu`` (loader workers) or ``device`` (the training device).

    Raises:
        ValueError: for an out-of-range value.
    """

    epochs: int = 1000
    iterations_per_epoch: int = 250
    val_iterations: int | None = None
    val_interval: int = 50
    initial_lr: float = 0.01
    weight_decay: float = 3e-5
    momentum: float = 0.99
    lr_exponent: float = 0.9
    lr_schedule: str = "per_iteration"
    grad_clip_norm: float = 12.0
    batch_size: int = 2
    patch_size: list = field(default_factory=list)
    oversample_foreground_percent: float = 0.33
    deep_supervision: bool = True
    mirror_axes: list | None = None
    augmentation_device: str = "cpu"
    num_workers: int | None = None
    seed: int = 12345

    def __post_init__(self) -> None:
        for name in ("epochs", "iterations_per_epoch", "batch_size", "val_interval"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.val_iterations is None:
            self.val_iterations = max(1, self.iterations_per_epoch // 5)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.initial_lr <= 0:
            raise ValueError(f"initial_lr must be positive, got {self.initial_lr}")
        if not 0 <= self.oversample_foreground_percent <= 1:
            raise ValueError(f"oversample_foreground_percent must be in [0, 1], got {self.oversample_foreground_percent}")
        if self.augmentation_device not in ("cpu", "device"):
            raise ValueError(f"augmentation_device must be 'cpu' or 'device', got {self.augmentation_device!r}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        self.patch_size = [int(p) for p in self.patch_size]
        dims = len(self.patch_size)
        self.mirror_axes = list(range(dims)) if self.mirror_axes is None else [int(a) for a in self.mirror_axes]
        if any(a < 0 or a >= max(dims, 1) for a in self.mirror_axes):
            raise ValueError(f"mirror_axes {self.mirror_axes} out of range for a {dims}D patch")

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_settings(configuration, overrides: dict[str, Any] | None = None, **explicit: Any) -> TrainingSettings:
    """Defaults <- plans (batch and patch size) <- ``overrides`` (bundle ids, e.g. a trainer config's) <-
    ``explicit`` (``None`` ignored; older names such as ``num_epochs`` accepted).

    Raises:
        ValueError: for unknown names or out-of-range values.
    """
    values: dict[str, Any] = {"batch_size": configuration.batch_size, "patch_size": list(configuration.patch_size)}
    known = TrainingSettings.__dataclass_fields__
    values.update({k: v for k, v in (overrides or {}).items() if k in known})
    for key, value in explicit.items():
        if value is not None:
            values[SETTING_ALIASES.get(key, key)] = value
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
    if len(values["patch_size"]) != len(configuration.patch_size):
        raise ValueError(f"patch_size {values['patch_size']} has {len(values['patch_size'])} axes but configuration "
                         f"{configuration.name} is {len(configuration.patch_size)}D")
    return TrainingSettings(**values)
