"""The final validation of a trained fold: the validation cases from the cache predicted as ``nnUNetv2_predict``
would (sliding window, mirroring test-time augmentation), written in their original geometry to
``validation_raw/``, and evaluated against ``gt_segmentations/`` into ``validation_raw/summary.json``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_final_validation"]


def run_final_validation(trainer) -> Path | None:
    """Runs the final validation of ``trainer``'s current network (rank 0 only); returns the summary file."""
    if not trainer.is_main_process:
        return None
    from monai_nnunet.evaluation import evaluate_folder
    from monai_nnunet.inference import Predictor, iter_preprocessed_cases, predict_cases_to_folder
    from monai_nnunet.networks import set_deep_supervision
    from monai_nnunet.utils.parallel import default_num_processes

    workers = default_num_processes()
    export_workers = 0 if workers <= 1 else min(2, workers)  # exports overlap with inference when CPUs allow

    network = trainer.network.module if hasattr(trainer.network, "module") else trainer.network
    was_training = network.training
    set_deep_supervision(network, False)
    try:
        predictor = Predictor.from_networks(
            network, trainer.plans_manager, trainer.configuration_name, trainer.dataset.raw,
            mirror_axes=trainer.inference_allowed_mirroring_axes, trainer_name=trainer.trainer_name,
            device=trainer.device, verbose=False,
        )
        _, val_ids = trainer.get_tr_and_val_case_ids()
        output = trainer.output_folder / "validation_raw"
        predict_cases_to_folder(predictor, iter_preprocessed_cases(trainer.cache_folder, val_ids), output,
                                save_probabilities=trainer.export_npz, num_processes_export=export_workers)
    finally:
        set_deep_supervision(network, trainer.settings.enable_deep_supervision)
        network.train(was_training)
    summary_file = output / "summary.json"
    summary = evaluate_folder(trainer.preprocessed_folder / "gt_segmentations", output, trainer.dataset,
                              output_file=summary_file, num_processes=workers, chill=True)
    per_class = " ".join(f"{k}={v['Dice']:.4f}" for k, v in summary["mean"].items())
    trainer.print_to_log_file(f"final validation of {len(val_ids)} case(s): mean Dice "
                              f"{summary['foreground_mean']['Dice']:.4f} ({per_class}); {summary_file}")
    return summary_file
