#!/usr/bin/env bash
# The main job end to end on a built-in synthetic dataset, in ./demo_output/: make the dataset, verify, plan and
# preprocess it, train fold 0 briefly (through its MONAI bundle), validate, export the model as a bundle zip,
# predict the held-out test images with that zip through `python -m monai.bundle run`, and score them.
# Set-up and tool output go to demo_output/logs/; the terminal shows the steps, the training and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf demo_output
mkdir -p demo_output/logs
LOGS="$PWD/demo_output/logs"
step() {  # step "title" log-name command...: runs the command with its output in the log, says where on failure
    local title=$1 log=$2; shift 2
    printf '%s ... ' "$title"
    if "$@" > "$LOGS/$log" 2>&1; then echo "done"; else echo "FAILED (see $LOGS/$log)"; tail -n 20 "$LOGS/$log"; exit 1; fi
}
step "[1/6] set-up: .venv with torch 2.13.0 and monai-nnunet" setup.log bash scripts/setup_env.sh
export nnUNet_raw="$PWD/demo_output/nnUNet_raw"
export nnUNet_preprocessed="$PWD/demo_output/nnUNet_preprocessed"
export nnUNet_results="$PWD/demo_output/nnUNet_results"
mkdir -p "$nnUNet_raw" "$nnUNet_preprocessed" "$nnUNet_results"
PY="$PWD/.venv/bin/python"
DEVICE=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
step "[2/6] synthetic dataset: 16 training and 4 test cases, 2 classes" dataset.log \
    $PY -m monai_nnunet make-synthetic-dataset -d 998 --num_cases 16 --num_test_cases 4 --shape 24 28 26 \
    --blobs_per_class 2
step "[3/6] verify, fingerprint, plan and preprocess (3d_fullres)" plan.log \
    $PY -m monai_nnunet plan_and_preprocess -d 998 -c 3d_fullres --verify_dataset_integrity
echo "[4/6] train fold 0 on $DEVICE (12 epochs x 25 iterations; whole-case validation every 4 epochs):"
$PY -m monai_nnunet train 998 3d_fullres 0 -device "$DEVICE" --epochs 12 --iterations_per_epoch 25 --val_every 4

FOLD="$nnUNet_results/Dataset998_Synthetic/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0"
ZIP="$PWD/demo_output/Synthetic_3d_fullres.zip"
step "[5/6] export the trained fold as a MONAI bundle zip" export.log \
    $PY -m monai_nnunet export-bundle -d 998 -c 3d_fullres -f 0 -o "$ZIP"
mkdir -p demo_output/bundle && (cd demo_output/bundle && $PY -m zipfile -e "$ZIP" .)
PRED="$PWD/demo_output/predictions"
step "[6/6] predict the test images with the zip (python -m monai.bundle run)" predict.log \
    bash -c "cd demo_output/bundle/Synthetic_3d_fullres && $PY -m monai.bundle run --config_file configs/inference.yaml \
        --dataset_dir '$nnUNet_raw/Dataset998_Synthetic/imagesTs' --output_dir '$PRED'"
$PY scripts/demo_summary.py "$nnUNet_raw/Dataset998_Synthetic" "$nnUNet_preprocessed/Dataset998_Synthetic" "$FOLD" \
    "$ZIP" "$PRED"
echo "  logs of each step:  $LOGS/"
