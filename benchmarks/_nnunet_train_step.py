"""nnU-Net v2's own train_step (its nnUNetTrainer, the plans' network (PlainConvUNet, or ResidualEncoderUNet for
ResEnc plans), loss and optimizer) timed on random batches of the plans' batch and patch size; run by train_step.py
with the python of a side venv that has nnunetv2 (arguments: preprocessed folder, iterations, warm-up, threads,
device[, plans name, configuration]). Prints one JSON line: {"seconds": [...]}."""

import json
import os
import sys
import tempfile
import time

import numpy as np
import torch


def main():
    preprocessed, iterations, warmup, threads, device = sys.argv[1:6]
    plans_name, configuration = (sys.argv[6:8] + ["nnUNetPlans", "3d_fullres"][len(sys.argv[6:8]):])
    torch.set_num_threads(int(threads))
    tmp = tempfile.mkdtemp()
    os.environ["nnUNet_preprocessed"] = preprocessed  # nnU-Net's initialize() looks at its own preprocessed data
    for name in ("nnUNet_raw", "nnUNet_results"):
        os.environ.setdefault(name, tmp)
    plans_file = os.path.join(preprocessed, "Dataset004_Hippocampus", plans_name + ".json")
    dataset_json_file = os.path.join(preprocessed, "Dataset004_Hippocampus", "dataset.json")
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    with open(plans_file) as f:
        plans = json.load(f)
    plans["continue_training"] = False  # nnU-Net 2.8 pops this key from the plans in __init__
    with open(dataset_json_file) as f:
        dataset_json = json.load(f)
    trainer = nnUNetTrainer(plans, configuration, 0, dataset_json, torch.device(device))
    trainer.initialize()
    cm = trainer.configuration_manager
    rng = np.random.default_rng(0)
    batch_size, patch = cm.batch_size, cm.patch_size
    scales = trainer._get_deep_supervision_scales()
    data = torch.from_numpy(rng.normal(size=(batch_size, 1, *patch)).astype(np.float32))
    seg = torch.from_numpy(rng.integers(0, 3, size=(batch_size, 1, *patch)).astype(np.int16))
    target = [torch.nn.functional.interpolate(seg.float(), scale_factor=s, mode="nearest-exact").to(torch.int16)
              for s in scales]
    batch = {"data": data, "target": target}
    times = []
    for i in range(int(warmup) + int(iterations)):
        start = time.perf_counter()
        trainer.train_step(batch)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= int(warmup):
            times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": times}))


if __name__ == "__main__":
    main()
