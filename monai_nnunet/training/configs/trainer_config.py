"""``TrainerConfig``: choose the network, the loss and training overrides without subclassing the trainer.

A config names *what* to build; the trainer builds it with its own defaults through :meth:`TrainerConfig.build_network`,
:meth:`~TrainerConfig.build_loss`, :meth:`~TrainerConfig.build_optimizer` and
:meth:`~TrainerConfig.build_lr_scheduler`. Classes may be given as objects or as ``"package.module:NAME"`` strings;
strings are imported only when something is built (or the run's bundle is written), so a config (and the registry
of built-in configs) can be imported without importing MONAI, the networks or the losses. The optimiser and the LR
scheduler may also be ``functools.partial`` objects carrying keyword arguments, or take them from
``optimizer_kwargs`` / ``lr_scheduler_kwargs``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported by whoever builds something, not by reading configs
    import torch.nn as nn

__all__ = ["OPTIMIZER_DEFAULTS", "OVERRIDE_FIELDS", "SCHEDULER_DEFAULTS", "TrainerConfig", "call_with_defaults",
           "check_keywords", "check_plain_data", "public_name", "reference_keywords", "resolve_reference"]

#: Fields whose ``None`` means "keep the trainer's default".
OVERRIDE_FIELDS = (
    "num_epochs",
    "iterations_per_epoch",
    "initial_lr",
    "weight_decay",
    "batch_size",
    "patch_size",
    "oversample_foreground_percent",
    "enable_deep_supervision",
    "optimizer",
    "lr_scheduler",
    "mirror_axes",
    "val_every",
    "augmentation_device",
)

Reference = Callable[..., Any] | str

#: the keywords the trainer offers an optimiser (those it does not accept are left out): nnU-Net's SGD settings
OPTIMIZER_DEFAULTS = ("lr", "weight_decay", "momentum", "nesterov")
#: the keywords the trainer offers an LR scheduler (those it does not accept are left out): the poly schedule's
SCHEDULER_DEFAULTS = ("initial_lr", "exponent", "max_steps")


@dataclass
class TrainerConfig:
    """What a training run builds, and which of the trainer's defaults it changes.

    Examples (the two forms of the user documentation)::

        TrainerConfig(architecture=DynamicKiUNet, architecture_kwargs={"pool_type": "max", "deep_supervision": True},
                      loss=DC_and_CE_loss, loss_kwargs={"soft_dice_kwargs": {}, "ce_kwargs": {}})
        TrainerConfig(loss=DC_and_Blob_CE_loss({"batch_dice": True}, {}))

    Attributes:
        architecture: network class or factory, called with the plans' ``arch_kwargs`` as keywords plus
            ``input_channels``, ``num_classes`` and ``deep_supervision`` (see
            :func:`monai_nnunet.networks.build_network`), or a ``"package.module:NAME"`` string. ``None``: the plans'
            network (nnU-Net's plain U-Net as :class:`~monai_nnunet.networks.PlansDynUNet`).
        architecture_kwargs: extra keywords for ``architecture``, overriding plans entries of the same name. A
            ``deep_supervision`` entry sets :attr:`enable_deep_supervision` (they must agree when both are given).
        loss: a loss class or factory (called with the trainer's default keywords merged with ``loss_kwargs``), a
            ready loss instance (used as it is; the run's bundle writes its class and the constructor arguments it
            recorded in ``init_kwargs``, as every loss of :mod:`monai_nnunet.losses` does), a
            ``"package.module:NAME"`` string, a ``functools.partial``, or ``None`` for the trainer's default loss
            (Dice + CE, or Dice + BCE for region-based labels).
        loss_kwargs: keywords for ``loss``; must be empty when ``loss`` is an instance.
        num_epochs, iterations_per_epoch, initial_lr, weight_decay, batch_size, patch_size,
        oversample_foreground_percent, enable_deep_supervision, mirror_axes, val_every: overrides of the
            trainer's defaults; ``None`` keeps the default. ``mirror_axes=()`` turns mirroring off.
        optimizer: an optimiser class or factory called as ``optimizer(params, **defaults)`` (the defaults
            :data:`OPTIMIZER_DEFAULTS` that it does not accept are left out), a reference string, a
            ``functools.partial`` carrying keyword arguments (``partial(torch.optim.AdamW, betas=(0.9, 0.99))``), or
            ``None`` (SGD, Nesterov, momentum 0.99). Its learning rate is :attr:`initial_lr`: an ``lr`` given in
            the partial or in ``optimizer_kwargs`` sets :attr:`initial_lr` (they must agree when both are given).
        optimizer_kwargs: keyword arguments of ``optimizer`` (over a partial's); needs ``optimizer``.
        lr_scheduler: a scheduler class or factory called as ``lr_scheduler(optimizer, **defaults)`` in the same
            way (defaults :data:`SCHEDULER_DEFAULTS`), a reference string, a ``functools.partial``
            (``partial(torch.optim.lr_scheduler.StepLR, step_size=10, gamma=0.5)``), or ``None`` (polynomial
            decay). It steps every iteration, or every epoch with the setting ``lr_schedule="per_epoch"``.
        lr_scheduler_kwargs: keyword arguments of ``lr_scheduler`` (over a partial's); needs ``lr_scheduler``.
        augmentation_device: ``"cpu"`` (default: the loader workers augment) or ``"device"`` (the workers only cut
            patches; spatial and intensity augmentation run on the training device, batch by batch, for machines
            whose CPUs cannot keep up with the GPU).
        description: one line for ``--help`` listings and logs.
        overlay: a bundle overlay file (a path, or the name of one in the template bundle's ``configs/trainers/``)
            merged over ``train.yaml``; the built-in configs are overlays. Its entries come before the fields'.

    Raises:
        TypeError, ValueError: from ``__post_init__`` on a wrong type or out-of-range value.
    """

    architecture: Reference | None = None
    architecture_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: Reference | nn.Module | None = None
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    num_epochs: int | None = None
    iterations_per_epoch: int | None = None
    initial_lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    patch_size: tuple[int, ...] | None = None
    oversample_foreground_percent: float | None = None
    enable_deep_supervision: bool | None = None
    optimizer: Reference | None = None
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    lr_scheduler: Reference | None = None
    lr_scheduler_kwargs: dict[str, Any] = field(default_factory=dict)
    mirror_axes: tuple[int, ...] | None = None
    val_every: int | None = None
    augmentation_device: str | None = None
    description: str = ""
    overlay: str | None = None

    def __post_init__(self) -> None:
        _check_reference("architecture", self.architecture)
        _check_reference("optimizer", self.optimizer)
        _check_reference("lr_scheduler", self.lr_scheduler)
        if not _is_module(self.loss):
            _check_reference("loss", self.loss)
        self.architecture_kwargs = _as_dict("architecture_kwargs", self.architecture_kwargs)
        self.loss_kwargs = _as_dict("loss_kwargs", self.loss_kwargs)
        self.optimizer_kwargs = _as_dict("optimizer_kwargs", self.optimizer_kwargs)
        self.lr_scheduler_kwargs = _as_dict("lr_scheduler_kwargs", self.lr_scheduler_kwargs)
        self._check_component("optimizer", "params", OPTIMIZER_DEFAULTS)
        self._check_component("lr_scheduler", "optimizer", SCHEDULER_DEFAULTS)
        if _is_module(self.loss) and self.loss_kwargs:
            raise ValueError("loss is an instance, so loss_kwargs would be ignored; pass the class instead.")
        reserved = [k for k in ("input_channels", "num_classes") if k in self.architecture_kwargs]
        if reserved:
            raise ValueError(f"architecture_kwargs may not set {reserved}; they come from the dataset.")
        for name in ("num_epochs", "iterations_per_epoch", "batch_size", "val_every"):
            _check_positive_int(name, getattr(self, name))
        _check_number("initial_lr", self.initial_lr, low=0.0, low_inclusive=False)
        lr = {**reference_keywords(self.optimizer), **self.optimizer_kwargs}.get("lr")
        if lr is not None:
            _check_number("optimizer lr", lr, low=0.0, low_inclusive=False)
            if self.initial_lr is None:
                self.initial_lr = lr  # the run's initial_lr is the rate the optimiser is built with
            elif lr != self.initial_lr:
                raise ValueError(f"optimizer: lr={lr} (its partial or optimizer_kwargs) contradicts initial_lr="
                                 f"{self.initial_lr}; give one of them.")
        _check_number("weight_decay", self.weight_decay, low=0.0)
        _check_number("oversample_foreground_percent", self.oversample_foreground_percent, low=0.0, high=1.0)
        if self.enable_deep_supervision is not None and not isinstance(self.enable_deep_supervision, bool):
            raise TypeError(f"enable_deep_supervision must be a bool or None, got {self.enable_deep_supervision!r}.")
        arch_ds = self.architecture_kwargs.get("deep_supervision")
        if arch_ds is not None:
            if self.enable_deep_supervision is None:
                self.enable_deep_supervision = bool(arch_ds)
            elif bool(arch_ds) != self.enable_deep_supervision:
                raise ValueError(
                    f"architecture_kwargs['deep_supervision']={arch_ds} contradicts "
                    f"enable_deep_supervision={self.enable_deep_supervision}."
                )
        self.patch_size = _int_tuple("patch_size", self.patch_size, minimum=1, lengths=(2, 3))
        self.mirror_axes = _int_tuple("mirror_axes", self.mirror_axes, minimum=0, lengths=(0, 1, 2, 3))
        axes = self.mirror_axes or ()
        if len(set(axes)) != len(axes) or any(a > 2 for a in axes):
            raise ValueError(f"mirror_axes must be distinct spatial axes in 0..2, got {self.mirror_axes}.")
        if self.augmentation_device not in (None, "cpu", "device"):
            raise ValueError(f"augmentation_device must be 'cpu' or 'device', got {self.augmentation_device!r}.")
        if not isinstance(self.description, str):
            raise TypeError(f"description must be a string, got {type(self.description).__name__}.")

    def _check_component(self, name: str, first_argument: str, offered: Sequence[str]) -> None:
        """Checks ``optimizer`` / ``lr_scheduler`` with its ``*_kwargs``: keywords it takes, none missing.

        Raises:
            ValueError: for ``*_kwargs`` without the component, a keyword the trainer passes itself, a keyword the
                component does not take or a required one nobody passes (checked here for classes and partials,
                when the bundle is written for reference strings).
            TypeError: for a keyword value that is not plain data.
        """
        kwargs_name = f"{name}_kwargs"
        kwargs = getattr(self, kwargs_name)
        component = getattr(self, name)
        if kwargs and component is None:
            raise ValueError(f"{kwargs_name} needs {name}: name the class (e.g. {name}=torch.optim.SGD) it is for.")
        if first_argument in kwargs:
            raise ValueError(f"{kwargs_name} may not set {first_argument!r}: the trainer passes it.")
        for key, value in reference_keywords(component).items():
            check_plain_data(f"{name} keyword {key!r}", value)
        for key, value in kwargs.items():
            check_plain_data(f"{kwargs_name}[{key!r}]", value)
        if component is not None and not isinstance(component, str):
            check_keywords(name, component, {**reference_keywords(component), **kwargs}, first_argument, offered)

    def overrides(self) -> dict[str, Any]:
        """The override fields that are set (not ``None``), by name."""
        return {name: getattr(self, name) for name in OVERRIDE_FIELDS if getattr(self, name) is not None}

    def build_network(
        self, configuration: Any, num_input_channels: int, num_outputs: int, deep_supervision: bool | None = None
    ) -> nn.Module:
        """Builds the network for a plans configuration.

        Args:
            configuration: the plans' configuration entry (dict) or a ``ConfigurationManager``.
            num_input_channels: image channels.
            num_outputs: segmentation heads.
            deep_supervision: the trainer's setting; ``None`` takes :attr:`enable_deep_supervision`, else ``True``.

        Returns:
            The network (:class:`~monai_nnunet.networks.PlansDynUNet` when :attr:`architecture` is ``None``).
        """
        from monai_nnunet.networks import build_network

        if deep_supervision is None:
            deep_supervision = True if self.enable_deep_supervision is None else self.enable_deep_supervision
        architecture = None if self.architecture is None else resolve_reference(self.architecture)
        return build_network(
            configuration,
            num_input_channels,
            num_outputs,
            deep_supervision=deep_supervision,
            architecture=architecture,
            architecture_kwargs=self.architecture_kwargs,
        )

    def build_loss(self, default: Callable[..., nn.Module] | None = None, **defaults: Any) -> nn.Module:
        """Builds the loss.

        An instance in :attr:`loss` is returned as it is. A class (or factory, or reference) is called with
        ``defaults`` merged with :attr:`loss_kwargs` (``loss_kwargs`` wins; dict values are merged key by key, so
        ``{"soft_dice_kwargs": {}}`` keeps the trainer's Dice settings); defaults the class does not accept are
        dropped, ``loss_kwargs`` never are.

        Args:
            default: the loss class to use when :attr:`loss` is ``None``.
            **defaults: the trainer's keywords, e.g. ``soft_dice_kwargs``, ``ce_kwargs``, ``ignore_label``.

        Returns:
            The loss module.

        Raises:
            ValueError: when :attr:`loss` and ``default`` are both ``None``.
        """
        if _is_module(self.loss):
            return self.loss
        factory = self.loss if self.loss is not None else default
        if factory is None:
            raise ValueError("this TrainerConfig has no loss; pass the trainer's default loss class as `default`.")
        return call_with_defaults(resolve_reference(factory), (), defaults, self.loss_kwargs)

    def build_optimizer(self, params: Any, default: Callable[..., Any] | None = None, **defaults: Any) -> Any:
        """Builds the optimiser: ``optimizer(params, **defaults)`` (or ``default`` when :attr:`optimizer` is ``None``).

        Args:
            params: the network's parameters (or parameter groups).
            default: the optimiser class to use when :attr:`optimizer` is ``None``.
            **defaults: e.g. ``lr``, ``weight_decay``, ``momentum``, ``nesterov``; ones the class does not accept
                are dropped (so ``optimizer=torch.optim.Adam`` simply ignores ``momentum``).

        Raises:
            ValueError: when :attr:`optimizer` and ``default`` are both ``None``.
        """
        factory = self.optimizer if self.optimizer is not None else default
        if factory is None:
            raise ValueError("this TrainerConfig has no optimizer; pass the trainer's default as `default`.")
        explicit = self.optimizer_kwargs if self.optimizer is not None else {}
        return call_with_defaults(resolve_reference(factory), (params,), defaults, explicit)

    def build_lr_scheduler(self, optimizer: Any, default: Callable[..., Any] | None = None, **defaults: Any) -> Any:
        """Builds the LR scheduler: ``lr_scheduler(optimizer, **defaults)``, unaccepted defaults dropped.

        Args:
            optimizer: the optimiser to schedule.
            default: the scheduler class to use when :attr:`lr_scheduler` is ``None``.
            **defaults: the trainer's scheduler keywords (e.g. ``initial_lr``, ``max_steps``, ``exponent``).

        Raises:
            ValueError: when :attr:`lr_scheduler` and ``default`` are both ``None``.
        """
        factory = self.lr_scheduler if self.lr_scheduler is not None else default
        if factory is None:
            raise ValueError("this TrainerConfig has no lr_scheduler; pass the trainer's default as `default`.")
        explicit = self.lr_scheduler_kwargs if self.lr_scheduler is not None else {}
        return call_with_defaults(resolve_reference(factory), (optimizer,), defaults, explicit)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description for checkpoints and ``debug.json``.

        Classes and functions become ``"module:qualname"``; a loss instance becomes
        ``{"instance_of": "module:qualname"}``; a ``functools.partial`` ``{"partial": "module:qualname",
        "keywords": {...}}``; tuples become lists; other objects their ``repr``.
        """
        return {f.name: _describe(getattr(self, f.name)) for f in fields(self)}


def resolve_reference(ref: Reference) -> Callable[..., Any]:
    """Imports ``"package.module:NAME"`` (or ``"package.module.NAME"``); anything else is returned unchanged.

    ``NAME`` may be dotted (``"pkg.mod:Outer.Inner"``).

    Args:
        ref: a reference string or an object.

    Returns:
        The imported (or given) object.

    Raises:
        ImportError: when the module cannot be imported.
        AttributeError: when the module has no such name.
        ValueError: for a malformed string.
    """
    if not isinstance(ref, str):
        return ref
    module_name, attr_path = _split_reference(ref)
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise AttributeError(f"module {module_name!r} has no attribute {attr_path!r} (from {ref!r}).")
        obj = getattr(obj, part)
    return obj


def public_name(obj: Any) -> str | None:
    """The shortest dotted path from which ``obj`` is importable under its own name (what a bundle ``_target_`` and
    ``pydoc.locate`` need): ``torch.optim.AdamW`` for the class defined in ``torch.optim.adamw`` (torch removes its
    submodules from the ``torch.optim`` namespace, so ``torch.optim.adamw.AdamW`` cannot be located),
    ``monai_nnunet.losses.DC_and_CE_loss`` for the class of ``monai_nnunet.losses.compound``.

    Args:
        obj: a class or function.

    Returns:
        The path, or ``None`` when ``obj`` cannot be located under its ``__module__`` and ``__qualname__`` (an object
        of ``__main__`` or of a function's body, or one its module does not expose).
    """
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or module == "__main__" or "<locals>" in qualname:
        return None
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        # the object's own module and its parents are imported already: look them up, import nothing
        found: Any = sys.modules.get(".".join(parts[:end]))
        for attribute in qualname.split("."):
            found = getattr(found, attribute, None)
        if found is obj:
            return ".".join([*parts[:end], qualname])
    return None


def reference_keywords(ref: Any) -> dict[str, Any]:
    """The keyword arguments a ``functools.partial`` carries (``{}`` for anything else)."""
    return dict(ref.keywords) if isinstance(ref, functools.partial) else {}


def check_keywords(name: str, factory: Any, keywords: Mapping[str, Any], first_argument: str | None = None,
                   offered: Sequence[str] = ()) -> None:
    """Checks that ``factory`` takes every keyword of ``keywords`` and that its required parameters are given.

    Args:
        name: the field, for the message.
        factory: class, function or ``functools.partial`` (or a reference string, imported).
        keywords: the keywords the user gives.
        first_argument: the positional argument the trainer passes (``params``, ``optimizer``), if any.
        offered: keywords the trainer offers when the factory takes them.

    Raises:
        ValueError: for a keyword the factory does not take, or a required parameter nobody passes.
    """
    factory = resolve_reference(factory)
    inner = getattr(factory, "func", factory)
    label = public_name(inner) or _qualified_name(inner).replace(":", ".")
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    names = {p.name for p in params if p.kind in named}
    unknown = sorted(k for k in keywords if k not in names) if not takes_any else []
    if unknown:
        raise ValueError(f"{name}: {label} takes no argument {unknown[0]!r} (it takes {', '.join(sorted(names))}).")
    positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY, *named)]
    skip = positional[0].name if first_argument is not None and positional else None
    missing = [p.name for p in params if p.kind in (*named, inspect.Parameter.POSITIONAL_ONLY)
               and p.default is inspect.Parameter.empty and p.name != skip and p.name not in keywords
               and p.name not in offered]
    if missing:
        raise ValueError(f"{name}: {label} needs {missing[0]!r}; pass it in {name}_kwargs or a functools.partial "
                         f"({name}=functools.partial({label}, {missing[0]}=...)).")


def check_plain_data(name: str, value: Any) -> None:
    """Checks that ``value`` can be written into a bundle file: None, bool, number, string, list or dict of them.

    Raises:
        TypeError: naming ``name``, for any other value.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            check_plain_data(f"{name}[{k!r}]", v)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_plain_data(f"{name}[{i}]", v)
        return
    raise TypeError(f"{name} must be plain data (None, bool, number, string, list, dict) to be written into the run's "
                    f"bundle, got {type(value).__name__}.")


def call_with_defaults(
    factory: Callable[..., Any], args: tuple, defaults: Mapping[str, Any], explicit: Mapping[str, Any]
) -> Any:
    """Calls ``factory(*args, **merged)``: ``explicit`` over ``defaults``, dicts merged, unaccepted defaults dropped.

    Args:
        factory: class or function.
        args: positional arguments.
        defaults: keywords offered by the caller; dropped when the factory's signature has no such parameter
            (and no ``**kwargs``).
        explicit: keywords the user asked for; always passed.

    Returns:
        What the factory returns.
    """
    accepted = accepted_keywords(factory)
    offered = {k: v for k, v in defaults.items() if accepted is None or k in accepted}
    return factory(*args, **deep_merge(offered, explicit))


def _is_module(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch.nn.Module`` instance (without importing torch: no torch, no module)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _split_reference(ref: str) -> tuple[str, str]:
    if ":" in ref:
        module_name, _, attr_path = ref.partition(":")
    else:
        module_name, _, attr_path = ref.rpartition(".")
    if not module_name or not attr_path or ":" in attr_path:
        raise ValueError(f"expected 'package.module:NAME', got {ref!r}.")
    return module_name, attr_path


def accepted_keywords(factory: Callable[..., Any]) -> set[str] | None:
    """Keyword names ``factory`` accepts, or ``None`` when it takes ``**kwargs`` or has no inspectable signature."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in params if p.kind in named}


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _check_reference(name: str, value: Any) -> None:
    if isinstance(value, functools.partial):
        if value.args:
            raise ValueError(f"{name}: a functools.partial may carry keyword arguments only, got positional "
                             f"{value.args!r}.")
        _check_reference(name, value.func)
        return
    if value is None or callable(value):
        return
    if isinstance(value, str):
        _split_reference(value)
        return
    raise TypeError(f"{name} must be a class, a callable, a 'package.module:NAME' string or None; got {value!r}.")


def _as_dict(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}.")
    return dict(value)


def _check_positive_int(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value!r}.")


def _check_number(
    name: str, value: Any, low: float | None = None, high: float | None = None, low_inclusive: bool = True
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or None, got {value!r}.")
    too_low = low is not None and (value < low or (not low_inclusive and value == low))
    if too_low or (high is not None and value > high):
        bounds = f"{'[' if low_inclusive else '('}{low}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{name} must be in {bounds}, got {value}.")


def _int_tuple(name: str, value: Any, minimum: int, lengths: Sequence[int]) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of ints or None, got {value!r}.")
    out = tuple(value)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in out) or len(out) not in lengths:
        raise ValueError(f"{name} must have {list(lengths)} ints >= {minimum}, got {value!r}.")
    return out


def _describe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if _is_module(value):
        return {"instance_of": _qualified_name(type(value))}
    if isinstance(value, functools.partial):
        return {"partial": _describe(value.func), "keywords": _describe(value.keywords)}
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.ismethod(value):
        return _qualified_name(value)
    if isinstance(value, Mapping):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    return repr(value)


def _qualified_name(obj: Any) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"
