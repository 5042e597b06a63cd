"""``monai-nnunet NAME ...``, ``python -m monai_nnunet NAME ...`` and the ``nnUNetv2_*`` console scripts.

NAME is the nnU-Net command without its ``nnUNetv2_`` prefix (``plan_and_preprocess``, ``train``, ...) or one of our
own commands (``convert-msd``, ``make-synthetic-dataset``, ...); dashes and underscores are interchangeable.
Expected failures (bad arguments, missing files, a dataset that fails verification) print one clear message and
exit with status 1; set ``MONAI_NNUNET_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable, Sequence

from monai_nnunet.utils.errors import describe_error

__all__ = ["COMMANDS", "main"]

#: command name -> (module under monai_nnunet.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan_and_preprocess": ("plan_and_preprocess", "fingerprint, plan and preprocess datasets"),
    "extract_fingerprint": ("extract_fingerprint", "read (and verify) a dataset and write its fingerprint"),
    "plan_experiment": ("plan_experiment", "plan configurations from a fingerprint"),
    "preprocess": ("preprocess", "write the preprocessed cache of planned configurations"),
    "convert_msd": ("convert_msd", "convert a Medical Segmentation Decathlon task folder to the nnU-Net layout"),
    "make_synthetic_dataset": ("make_synthetic_dataset", "write a small synthetic dataset in the raw layout"),
    "predict": ("predict", "predict a folder of images with a trained model (sliding window, TTA, fold ensemble)"),
    "evaluate_folder": ("evaluate_folder", "Dice and IoU per case and class of a prediction folder -> summary.json"),
    "evaluate_simple": ("evaluate_simple", "like evaluate_folder, with labels given on the command line"),
    "accumulate_crossval_results": ("accumulate_crossval_results",
                                    "collect and evaluate the cross-validation predictions of a trained model"),
    "find_best_configuration": ("find_best_configuration",
                                "compare trained configurations and their ensembles; write inference instructions"),
    "ensemble": ("ensemble", "average the saved probabilities of several prediction folders"),
    "determine_postprocessing": ("determine_postprocessing",
                                 "choose the connected-component post-processing on cross-validation predictions"),
    "apply_postprocessing": ("apply_postprocessing", "apply a postprocessing.json to a folder of predictions"),
    "move_plans_between_datasets": ("move_plans_between_datasets",
                                    "copy plans to another dataset (pretraining / fine-tuning)"),
    "train": ("train", "train one fold of a configuration (nnU-Net's recipe, run as a MONAI bundle)"),
    "export_bundle": ("export_bundle", "export trained folds as a self-contained MONAI bundle zip"),
    "import_nnunet": ("import_nnunet", "turn a model trained by nnU-Net v2 into a MONAI bundle zip"),
    "export_model_to_zip": ("export_model_to_zip", "export trained models as a zip in nnU-Net's layout"),
    "install_pretrained_model_from_zip": ("install_pretrained_model_from_zip",
                                          "check a model zip (ours or nnU-Net's) and install it into nnUNet_results"),
    "predict_from_modelfolder": ("predict_from_modelfolder", "predict a folder of images with a given model folder"),
    "plot_overlay_pngs": ("plot_overlay_pngs", "one PNG per case: the slice with the most foreground, labels overlaid"),
}
#: nnU-Net's own names for commands we call differently
ALIASES = {"convert_MSD_dataset": "convert_msd"}


def _normalise(name: str) -> str:
    name = name.replace("-", "_")
    name = name[len("nnUNetv2_"):] if name.startswith("nnUNetv2_") else name
    return ALIASES.get(name, name)


def _run_command(name: str, argv: Sequence[str], prog: str) -> int:
    module = importlib.import_module(f"monai_nnunet.cli.{COMMANDS[name][0]}")
    parser = argparse.ArgumentParser(prog=prog, description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(list(argv))
    try:
        module.run_cli(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, LookupError, RuntimeError) as e:
        if os.environ.get("MONAI_NNUNET_DEBUG"):
            raise
        where = f"rank {os.environ.get('RANK', '?')}: " if os.environ.get("WORLD_SIZE", "1") not in ("", "1") else ""
        print(f"{prog}: error: {where}{describe_error(e)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatches ``NAME [args]`` to its command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    listing = "\n".join(f"  {n.replace('_', '-'):<26}{h}" for n, (_, h) in COMMANDS.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: monai-nnunet COMMAND [args]\n\ncommands:\n{listing}")
        return 0 if argv else 2
    if argv[0] == "--version":
        from monai_nnunet import __version__

        print(__version__)
        return 0
    name = _normalise(argv[0])
    if name not in COMMANDS:
        print(f"monai-nnunet: unknown command {argv[0]!r}\n\ncommands:\n{listing}", file=sys.stderr)
        return 2
    return _run_command(name, argv[1:], f"monai-nnunet {argv[0]}")


def _entry(name: str) -> Callable[[], None]:
    def entry() -> None:
        sys.exit(_run_command(name, sys.argv[1:], f"nnUNetv2_{name}"))

    entry.__name__ = f"{name}_entry"
    entry.__doc__ = f"Console script nnUNetv2_{name}."
    return entry


def console_main() -> None:
    """Console script ``monai-nnunet``."""
    sys.exit(main())


plan_and_preprocess_entry = _entry("plan_and_preprocess")
extract_fingerprint_entry = _entry("extract_fingerprint")
plan_experiment_entry = _entry("plan_experiment")
preprocess_entry = _entry("preprocess")
convert_msd_entry = _entry("convert_msd")
train_entry = _entry("train")
predict_entry = _entry("predict")
evaluate_folder_entry = _entry("evaluate_folder")
evaluate_simple_entry = _entry("evaluate_simple")
accumulate_crossval_results_entry = _entry("accumulate_crossval_results")
find_best_configuration_entry = _entry("find_best_configuration")
ensemble_entry = _entry("ensemble")
determine_postprocessing_entry = _entry("determine_postprocessing")
apply_postprocessing_entry = _entry("apply_postprocessing")
move_plans_between_datasets_entry = _entry("move_plans_between_datasets")
export_model_to_zip_entry = _entry("export_model_to_zip")
install_pretrained_model_from_zip_entry = _entry("install_pretrained_model_from_zip")
predict_from_modelfolder_entry = _entry("predict_from_modelfolder")
plot_overlay_pngs_entry = _entry("plot_overlay_pngs")
