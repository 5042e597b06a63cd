"""nnU-Net v2's own training of one fold at a fixed budget (its nnUNetTrainer with num_epochs and
num_iterations_per_epoch set), then its final validation; run by accuracy_hippocampus.py with the python of a side
venv that has nnunetv2. Arguments: PLANS_IDENTIFIER CONFIGURATION FOLD EPOCHS ITERATIONS SEED THREADS DEVICE.
Prints one JSON line: {"summary": <validation/summary.json path>, "seconds": wall time}."""

import json
import os
import random
import sys
import time

import numpy as np
import torch


def main():
    plans_identifier, configuration, fold, epochs, iterations, seed, threads, device = sys.argv[1:9]
    torch.set_num_threads(int(threads))
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    class nnUNetTrainerBudget(nnUNetTrainer):
        """nnU-Net's trainer with the benchmark's epochs and iterations (its own class name in the output folder)."""

        # nnU-Net records the constructor's arguments by name: its own signature
        def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                     device: torch.device = torch.device("cuda")):
            super().__init__(plans, configuration, fold, dataset_json, device)
            self.num_epochs = int(epochs)
            self.num_iterations_per_epoch = int(iterations)

    folder = os.path.join(nnUNet_preprocessed, "Dataset004_Hippocampus")
    with open(os.path.join(folder, plans_identifier + ".json")) as f:
        plans = json.load(f)
    plans["continue_training"] = False  # nnU-Net 2.8 pops this key from the plans in __init__
    with open(os.path.join(folder, "dataset.json")) as f:
        dataset_json = json.load(f)
    start = time.perf_counter()
    trainer = nnUNetTrainerBudget(plans, configuration, int(fold), dataset_json, torch.device(device))
    trainer.run_training()
    trainer.perform_actual_validation(False)
    seconds = time.perf_counter() - start
    print(json.dumps({"summary": os.path.join(trainer.output_folder, "validation", "summary.json"),
                      "seconds": seconds}))


if __name__ == "__main__":
    main()
