"""The demo's closing summary: the final validation Dice of the trained fold, the Dice of the bundle zip's
predictions on the held-out test images, and where every output is."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from monai_nnunet.evaluation import evaluate_folder


def main(raw: str, preprocessed: str, fold: str, zip_file: str, predictions: str) -> None:
    dataset = Path(raw)
    names = {str(v): k for k, v in json.loads((dataset / "dataset.json").read_text())["labels"].items()}
    validation = json.loads((Path(fold) / "validation_raw" / "summary.json").read_text())
    test = evaluate_folder(dataset / "labelsTs", predictions, dataset / "dataset.json", chill=True, num_processes=1)
    test_mean = {str(k): v for k, v in test["mean"].items()}
    print("\nDice per class (1 = perfect):")
    print(f"  {'class':<12}{'validation (fold 0)':>22}{'test (bundle zip)':>20}")
    for label, result in validation["mean"].items():
        print(f"  {names.get(label, label):<12}{result['Dice']:>22.3f}{test_mean[label]['Dice']:>20.3f}")
    print(f"  {'mean':<12}{validation['foreground_mean']['Dice']:>22.3f}{test['foreground_mean']['Dice']:>20.3f}")
    print("\nOutputs:")
    for what, where in [
        ("plans", Path(preprocessed) / "nnUNetPlans.json"),
        ("training log", Path(fold) / "training_log.txt"),
        ("progress plot", Path(fold) / "progress.png"),
        ("checkpoints", Path(fold) / "checkpoint_{latest,best,final}.pth"),
        ("the run's bundle", Path(fold) / "configs" / "train.yaml"),
        ("final validation", Path(fold) / "validation_raw" / "summary.json"),
        ("bundle zip", Path(zip_file)),
        ("test predictions", Path(predictions)),
    ]:
        print(f"  {what + ':':<19}{where}")


if __name__ == "__main__":
    main(*sys.argv[1:6])
