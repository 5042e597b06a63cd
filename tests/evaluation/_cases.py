"""Hand-made reference / prediction label maps for the evaluation tests (pure NumPy, shared with the fixture script
that runs nnU-Net v2's evaluation on the same arrays)."""

import numpy as np

SHAPE = (4, 5, 6)
IGNORE = 3


def cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (reference, prediction), uint8 arrays in (z, y, x) order."""
    out = {}
    ref = np.zeros(SHAPE, np.uint8)
    pred = np.zeros(SHAPE, np.uint8)
    ref[0, :2, :2] = 1          # 4 voxels of label 1
    pred[0, :2, :1] = 1         # 2 of them found (TP 2, FN 2)
    pred[3, 4, 5] = 1           # and one false positive (FP 1)
    ref[1:3, 1:3, 1:3] = 2      # 8 voxels of label 2
    pred[1:3, 1:3, 1:3] = 2     # all found
    pred[1, 0, 0] = 2           # FP 1 for label 2
    ref[3, 0, :3] = IGNORE      # ignored reference voxels: whatever is predicted there does not count
    pred[3, 0, :3] = 1
    out["case_a"] = (ref, pred)

    ref = np.zeros(SHAPE, np.uint8)
    pred = np.zeros(SHAPE, np.uint8)
    ref[2, 2, 2:5] = 1          # label 2 absent from both: NaN Dice and IoU
    pred[2, 2, 2:4] = 1
    out["case_b"] = (ref, pred)

    ref = np.zeros(SHAPE, np.uint8)
    pred = np.zeros(SHAPE, np.uint8)
    pred[0, 0, 0] = 1           # label 1 only in the prediction: Dice 0
    ref[1, 1, :] = 2
    pred[1, 1, 1:] = 2
    out["case_c"] = (ref, pred)
    return out


#: the two evaluations compared with nnU-Net: plain labels with the ignore label, and regions
LABELS = [1, 2]
REGIONS = [(1, 2), 2]  # as nnU-Net's label manager reads {"a": [1, 2], "b": 2}
