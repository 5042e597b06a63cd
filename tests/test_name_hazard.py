"""No public class or function of ours may share a name with one MONAI exports.

MONAI's bundle parser resolves a short ``_target_`` (e.g. ``DiceLoss``) by scanning every imported module whose
name starts with ``monai`` (``monai_nnunet`` included); a clash would silently replace MONAI's component in every
bundle that uses the short name.
"""

import importlib
import inspect
import pkgutil

import monai
from monai.bundle.config_item import ComponentLocator

import monai_nnunet

MONAI_SUBPACKAGES = (
    "monai.apps", "monai.bundle", "monai.data", "monai.engines", "monai.handlers", "monai.inferers", "monai.losses",
    "monai.metrics", "monai.networks", "monai.networks.blocks", "monai.networks.nets", "monai.optimizers",
    "monai.transforms", "monai.utils", "monai.visualize",
)


def _our_modules():
    names = []
    for info in pkgutil.walk_packages(monai_nnunet.__path__, prefix="monai_nnunet."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
        importlib.import_module(info.name)
    return names


def _public_components(module_names):
    found = {}
    for name in module_names:
        module = importlib.import_module(name)
        for attr, obj in inspect.getmembers(module):
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.setdefault(attr, []).append(name)
    return found


def test_no_component_shadows_monai():
    ours = _public_components(_our_modules())
    for sub in MONAI_SUBPACKAGES:
        importlib.import_module(sub)
    table = ComponentLocator()._find_classes_or_functions(ComponentLocator()._find_module_names())
    clashes = {
        name: [m for m in table.get(name, []) if not m.startswith("monai_nnunet")]
        for name in ours
    }
    clashes = {k: v for k, v in clashes.items() if v}
    assert not clashes, f"these names of ours shadow MONAI components (rename them): {clashes}"


def test_public_names_are_unique_within_the_package():
    ours = _public_components(_our_modules())
    duplicates = {k: v for k, v in ours.items() if len(v) > 1 and inspect.isclass(getattr(importlib.import_module(v[0]), k))}
    assert not duplicates, f"class names defined in more than one module make short _target_ ambiguous: {duplicates}"


def test_monai_version_is_supported():
    major, minor = (int(p) for p in monai.__version__.split(".")[:2])
    assert (major, minor) >= (1, 6)
