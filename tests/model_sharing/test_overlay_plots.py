"""``nnUNetv2_plot_overlay_pngs``: one PNG per case, the slice with the most foreground, colours where the labels
are."""

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_segmentation
from monai_nnunet.utils.overlay_plots import (COLOR_CYCLE, generate_overlay, hex_to_rgb, plot_overlay,
                                              select_slice_to_plot)

FIXTURES = Path(__file__).parent / "fixtures"


def test_overlay_equals_nnunets_png(tmp_path):
    """nnU-Net 2.8.1's plot_overlay of the same files (fixtures/make_nnunet_overlay.py), pixel for pixel."""
    out = plot_overlay(FIXTURES / "overlay_image_0000.nii.gz", FIXTURES / "overlay_label.nii.gz", tmp_path / "o.png")
    np.testing.assert_array_equal(imread(out), imread(FIXTURES / "overlay_nnunet.png"))


def test_generate_overlay_values():
    image = np.array([[0.0, 1.0], [2.0, 4.0]])
    seg = np.array([[0, 1], [2, 0]])
    out = generate_overlay(image, seg, overlay_intensity=0.6)
    # nnU-Net's formula: grey to [0, 255], + 0.6 * colour of the value's rank, rescaled to [0, 255]
    grey = np.tile((image / 4 * 255)[:, :, None], (1, 1, 3))
    grey[0, 1] += 0.6 * np.array(hex_to_rgb(COLOR_CYCLE[1]))
    grey[1, 0] += 0.6 * np.array(hex_to_rgb(COLOR_CYCLE[2]))
    np.testing.assert_array_equal(out, (grey / grey.max() * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="differ in shape"):
        generate_overlay(image, seg[:1])


def test_slice_selection_follows_nnunet():
    seg = np.zeros((4, 5, 5), np.uint8)
    seg[1, :2, :2] = 1          # 4 voxels of label 1 (all of it)
    seg[2, :, :] = 2            # 25 voxels of label 2, 2/3 of it
    seg[3, :3, :4] = 2
    assert select_slice_to_plot(seg, seg) == 1  # label 1's whole share beats label 2's 25/37
    assert select_slice_to_plot(seg, np.zeros_like(seg)) == 0


@pytest.mark.parametrize("use_raw", [True, False])
def test_plot_overlay_pngs(use_raw, synthetic_dataset, preprocessed_synthetic, tmp_path, monkeypatch, capsys):
    if not use_raw:
        monkeypatch.setenv("nnUNet_preprocessed", str(preprocessed_synthetic["preprocessed"]))
    out = tmp_path / "png"
    assert main(["plot_overlay_pngs", "-d", "998", "-o", str(out), "-np", "1",
                 *(["--use_raw"] if use_raw else ["-c", "3d_fullres"])]) == 0
    cases = sorted(p.stem for p in (synthetic_dataset / "labelsTr").glob("*.nii.gz"))
    cases = [c[: -len(".nii")] for c in cases]
    assert sorted(p.stem for p in out.glob("*.png")) == cases
    if not use_raw:
        return
    for case in cases:
        seg = read_segmentation(synthetic_dataset / "labelsTr" / f"{case}.nii.gz")[0][0]
        z = select_slice_to_plot(seg, seg)
        png = (imread(out / f"{case}.png")[..., :3] * 255).round().astype(int)
        assert png.shape[:2] == seg.shape[1:]
        coloured = (png[..., 0] != png[..., 1]) | (png[..., 1] != png[..., 2])
        np.testing.assert_array_equal(coloured, seg[z] != 0)


def test_plot_overlay_errors(synthetic_dataset, tmp_path, capsys):
    assert main(["plot_overlay_pngs", "-d", "998", "-o", str(tmp_path), "--use_raw", "-channel_idx", "3"]) == 1
    assert "-channel_idx 3" in capsys.readouterr().err
    assert main(["plot_overlay_pngs", "-d", "998", "-o", str(tmp_path)]) == 1
    assert "run preprocessing" in capsys.readouterr().err
