#!/usr/bin/env bash
# The main job end to end on a built-in synthetic dataset, in ./demo_output/:
# make the dataset, verify it, fingerprint, plan and preprocess it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export nnUNet_raw="$PWD/demo_output/nnUNet_raw"
export nnUNet_preprocessed="$PWD/demo_output/nnUNet_preprocessed"
export nnUNet_results="$PWD/demo_output/nnUNet_results"
rm -rf demo_output
mkdir -p "$nnUNet_raw" "$nnUNet_preprocessed" "$nnUNet_results"
PY=.venv/bin/python
$PY -m monai_nnunet make-synthetic-dataset -d 998 --num_cases 12
$PY -m monai_nnunet plan_and_preprocess -d 998 -c 2d 3d_fullres --verify_dataset_integrity
echo
echo "Demo finished. Outputs:"
echo "  raw dataset:      $nnUNet_raw/Dataset998_Synthetic"
echo "  plans:            $nnUNet_preprocessed/Dataset998_Synthetic/nnUNetPlans.json"
echo "  preprocessed:     $nnUNet_preprocessed/Dataset998_Synthetic/nnUNetPlans_3d_fullres/"
