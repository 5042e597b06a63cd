#!/usr/bin/env bash
# The main job end to end on a built-in synthetic dataset, in ./demo_output/: make the dataset, verify, plan and
# preprocess it, train fold 0 briefly (through its MONAI bundle), validate, export the model as a bundle zip and
# predict the test images with that zip through `python -m monai.bundle run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export nnUNet_raw="$PWD/demo_output/nnUNet_raw"
export nnUNet_preprocessed="$PWD/demo_output/nnUNet_preprocessed"
export nnUNet_results="$PWD/demo_output/nnUNet_results"
rm -rf demo_output
mkdir -p "$nnUNet_raw" "$nnUNet_preprocessed" "$nnUNet_results"
PY="$PWD/.venv/bin/python"
DEVICE=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
$PY -m monai_nnunet make-synthetic-dataset -d 998 --num_cases 12
$PY -m monai_nnunet plan_and_preprocess -d 998 -c 3d_fullres --verify_dataset_integrity
$PY -m monai_nnunet train 998 3d_fullres 0 -device "$DEVICE" --epochs 3 --iterations_per_epoch 10 --val_every 3
$PY -m monai_nnunet export-bundle -d 998 -c 3d_fullres -f 0 -o demo_output/Synthetic_3d_fullres.zip
mkdir -p demo_output/bundle && (cd demo_output/bundle && $PY -m zipfile -e ../Synthetic_3d_fullres.zip .)
(cd demo_output/bundle/Synthetic_3d_fullres && $PY -m monai.bundle run --config_file configs/inference.yaml \
    --dataset_dir "$nnUNet_raw/Dataset998_Synthetic/imagesTs" --output_dir "$PWD/../../predictions")
FOLD="$nnUNet_results/Dataset998_Synthetic/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0"
echo
echo "Demo finished. Outputs:"
echo "  plans:               $nnUNet_preprocessed/Dataset998_Synthetic/nnUNetPlans.json"
echo "  training log:        $FOLD/training_log.txt"
echo "  checkpoints:         $FOLD/checkpoint_{latest,best,final}.pth"
echo "  run bundle:          $FOLD/configs/train.yaml"
echo "  final validation:    $FOLD/validation_raw/summary.json"
echo "  bundle zip:          $PWD/demo_output/Synthetic_3d_fullres.zip"
echo "  predictions (zip):   $PWD/demo_output/predictions/"
