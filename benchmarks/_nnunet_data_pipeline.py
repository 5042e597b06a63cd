"""nnU-Net v2's own training data pipeline, timed; run by data_pipeline.py with the python of a side venv
that has nnunetv2 installed. Prints one JSON line: {"batches_per_s": ..., "peak_rss_mb": ...}."""

import json
import os
import sys
import time

import numpy as np
import torch


def main():
    preprocessed, num_workers, n_batches, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    os.environ["nnUNet_preprocessed"] = preprocessed
    os.environ.setdefault("nnUNet_raw", preprocessed)
    os.environ.setdefault("nnUNet_results", preprocessed)
    torch.set_num_threads(1)
    from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
    from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
    from batchgenerators.utilities.file_and_folder_operations import join, load_json
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
    from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    folder = join(preprocessed, "Dataset004_Hippocampus")
    plans = PlansManager(join(folder, "nnUNetPlans.json"))
    cm = plans.get_configuration("3d_fullres")
    lm = plans.get_label_manager(load_json(join(folder, "dataset.json")))
    splits = load_json(join(folder, "splits_final.json")) if os.path.isfile(join(folder, "splits_final.json")) else None
    ds_folder = join(folder, cm.data_identifier)
    ids = splits[0]["train"] if splits else nnUNetDatasetBlosc2.get_identifiers(ds_folder)
    dataset = nnUNetDatasetBlosc2(ds_folder, ids)
    patch = cm.patch_size
    rot = (-30.0 / 360 * 2 * np.pi, 30.0 / 360 * 2 * np.pi)
    from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size

    initial = get_patch_size(patch, rot, rot, rot, (0.85, 1.25))
    ds_scales = list(list(i) for i in 1 / np.cumprod(np.vstack(cm.pool_op_kernel_sizes), axis=0))[:-1]
    transforms = nnUNetTrainer.get_training_transforms(patch, rot, ds_scales, (0, 1, 2), False,
                                                       use_mask_for_norm=cm.use_mask_for_norm,
                                                       is_cascaded=False, foreground_labels=lm.foreground_labels,
                                                       regions=None, ignore_label=None)
    dl = nnUNetDataLoader(dataset, cm.batch_size, initial, patch, lm, oversample_foreground_percent=0.33,
                          sampling_probabilities=None, pad_sides=None, transforms=transforms)
    if num_workers == 0:
        gen = SingleThreadedAugmenter(dl, None)
    else:
        gen = NonDetMultiThreadedAugmenter(dl, None, num_workers, max(6, num_workers // 2), None, False, 0.002)
    for _ in range(warmup):
        next(gen)
    start = time.perf_counter()
    for _ in range(n_batches):
        next(gen)
    elapsed = time.perf_counter() - start
    from _rss import total_peak_rss_mb

    peak = total_peak_rss_mb()
    if hasattr(gen, "_finish"):
        gen._finish()  # stop the augmenter's worker processes (they would hold our stdout open)
    print(json.dumps({"batches_per_s": n_batches / elapsed, "peak_rss_mb": peak}), flush=True)
    os._exit(0)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
