"""Prediction end to end on a fabricated trained model: geometry of the outputs, workers, folds, cached cases,
checkpoint formats and error messages."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_nnunet.utils.properties import load_properties
from monai_nnunet.dataset.io import read_images, read_segmentation, write_image
from monai_nnunet.inference import (
    CasePredictionError,
    InputCaseError,
    ModelLoadingError,
    Predictor,
    PreprocessingDataset,
    iter_preprocessed_cases,
    list_input_cases,
    load_checkpoint,
    model_output_folder,
    predict_cases_to_folder,
)
from monai_nnunet.networks import monai_to_nnunet_state_dict
from monai_nnunet.planning.plans import PlansManager
from monai_nnunet.preprocessing.cache import case_ids_in_cache
from tests.inference.conftest import DATASET

MODEL = "nnUNetTrainer__nnUNetPlans__3d_fullres"


def model_folder(env, name=MODEL):
    return env["results"] / DATASET / name


def training_image(env, case="synthetic_tr001"):
    return env["raw"] / DATASET / "imagesTr" / f"{case}_0000.nii.gz"


def write_with_geometry(source, target, spacing, origin, direction):
    """Writes the image of ``source`` with another spacing / origin / direction (ITK order)."""
    data, props = read_images([source])
    write_image(data[0], target, {"sitk_stuff": {"spacing": spacing, "origin": origin, "direction": direction}})


@pytest.fixture
def predictor(trained_env):
    return Predictor.from_results_folder(model_folder(trained_env), folds=(0,), device="cpu", verbose=False)


def test_outputs_have_the_inputs_shapes_and_affines(trained_env, predictor, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(trained_env["raw"] / DATASET / "imagesTs" / "synthetic_ts000_0000.nii.gz", inputs)
    # spacing unlike the plans' 1 mm (resampled both ways), oblique direction, shifted origin
    rot = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    write_with_geometry(training_image(trained_env), inputs / "odd_0000.nii.gz", (1.6, 0.8, 1.2), (5.0, -7.0, 2.5), rot)
    out = tmp_path / "out"
    written = predictor.predict_from_files(inputs, out, num_processes_preprocessing=0, num_processes_export=0)
    assert sorted(p.name for p in written) == ["odd.nii.gz", "synthetic_ts000.nii.gz"]
    for case in ("odd", "synthetic_ts000"):
        image = nib.load(str(inputs / f"{case}_0000.nii.gz"))
        seg = nib.load(str(out / f"{case}.nii.gz"))
        assert seg.shape == image.shape
        assert np.allclose(seg.affine, image.affine, atol=1e-5)
        assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2}
    for name in ("dataset.json", "plans.json", "predict_from_raw_data_args.json"):
        assert (out / name).is_file()
    # the odd case really was resampled: its preprocessed grid differs from the input's
    pre = predictor.preprocess_case([inputs / "odd_0000.nii.gz"], "odd")
    assert pre["data"].shape[1:] != nib.load(str(inputs / "odd_0000.nii.gz")).shape[::-1]


def test_predictions_are_not_constant_and_find_foreground(trained_env, predictor, tmp_path):
    written = predictor.predict_from_files(trained_env["raw"] / DATASET / "imagesTr", tmp_path,
                                           num_processes_preprocessing=0, num_processes_export=0)
    dice = []
    for f in written:
        pred, _ = read_segmentation(f)
        ref, _ = read_segmentation(trained_env["raw"] / DATASET / "labelsTr" / f.name)
        dice.append(2 * np.sum((pred == 1) & (ref == 1)) / (np.sum(pred == 1) + np.sum(ref == 1)))
    assert np.mean(dice) > 0.3


def test_worker_processes_give_the_same_files(trained_env, predictor, tmp_path, monkeypatch):
    monkeypatch.setenv("MONAI_NNUNET_START_METHOD", "fork")
    images = trained_env["raw"] / DATASET / "imagesTr"
    inline = predictor.predict_from_files(images, tmp_path / "a", save_probabilities=True,
                                          num_processes_preprocessing=0, num_processes_export=0)
    workers = predictor.predict_from_files(images, tmp_path / "b", save_probabilities=True,
                                           num_processes_preprocessing=2, num_processes_export=2)
    assert sorted(p.name for p in inline) == sorted(p.name for p in workers)
    for f in inline:
        assert np.array_equal(read_segmentation(f)[0], read_segmentation(tmp_path / "b" / f.name)[0])
        case = f.name[: -len(".nii.gz")]
        with np.load(tmp_path / "a" / f"{case}.npz") as a, np.load(tmp_path / "b" / f"{case}.npz") as b:
            assert np.allclose(a["probabilities"], b["probabilities"], atol=1e-6)
            probs = a["probabilities"]
        seg = read_segmentation(f)[0][0]
        assert probs.shape == (3, *seg.shape) and np.allclose(probs.sum(0), 1, atol=1e-4)
        assert np.array_equal(probs.argmax(0), seg)
        assert "sitk_stuff" in load_properties(tmp_path / "a" / f"{case}.json")


def test_cached_cases_give_the_same_predictions_as_the_raw_images(trained_env, predictor, tmp_path):
    """The final-validation path (cache -> predict_cases_to_folder) equals prediction from the raw files."""
    cache = trained_env["preprocessed"] / DATASET / "nnUNetPlans_3d_fullres"
    ids = case_ids_in_cache(cache)[:3]
    from_cache = predict_cases_to_folder(predictor, list(iter_preprocessed_cases(cache, ids)), tmp_path / "val",
                                         num_processes_export=0)
    images = [[training_image(trained_env, c)] for c in ids]
    from_raw = predictor.predict_from_files(images, tmp_path / "raw", num_processes_preprocessing=0,
                                            num_processes_export=0)
    assert [p.name for p in from_cache] == [p.name for p in from_raw] == [f"{c}.nii.gz" for c in ids]
    for a, b in zip(from_cache, from_raw):
        assert np.array_equal(read_segmentation(a)[0], read_segmentation(b)[0])


def test_export_in_a_spawned_worker(trained_env, predictor, tmp_path, monkeypatch):
    """The start method a busy process (a trainer with threads) falls back to."""
    monkeypatch.setenv("MONAI_NNUNET_START_METHOD", "spawn")
    cache = trained_env["preprocessed"] / DATASET / "nnUNetPlans_3d_fullres"
    ids = case_ids_in_cache(cache)[:2]
    written = predict_cases_to_folder(predictor, iter_preprocessed_cases(cache, ids), tmp_path, num_processes_export=1)
    assert sorted(p.name for p in written) == [f"{c}.nii.gz" for c in ids]


def test_folds_average_their_logits(trained_env):
    folder = model_folder(trained_env)
    data = np.load(trained_env["preprocessed"] / DATASET / "nnUNetPlans_3d_fullres" / "synthetic_tr002.npy")
    both = Predictor.from_results_folder(folder, (0, 1), device="cpu").predict_preprocessed_case(data)
    single = [Predictor.from_results_folder(folder, (f,), device="cpu").predict_preprocessed_case(data) for f in (0, 1)]
    assert not torch.allclose(single[0], single[1])
    assert torch.allclose(both, (single[0] + single[1]) / 2, atol=1e-5)


def test_checkpoint_dict_and_nnunet_checkpoint_give_the_same_logits(trained_env, predictor, tmp_path):
    folder = model_folder(trained_env)
    data = np.load(trained_env["preprocessed"] / DATASET / "nnUNetPlans_3d_fullres" / "synthetic_tr002.npy")
    expected = predictor.predict_preprocessed_case(data)
    checkpoint = load_checkpoint(folder / "fold_0" / "checkpoint_final.pth")
    from_dict = Predictor.from_checkpoint_dict(checkpoint, device="cpu").predict_preprocessed_case(data)
    assert torch.allclose(from_dict, expected, atol=1e-6)
    # the same weights as nnU-Net v2 writes them: PlainConvUNet keys, init_args, no top-level configuration
    network = predictor.model.networks[0]
    nnunet = {"network_weights": monai_to_nnunet_state_dict(network), "trainer_name": "nnUNetTrainer",
              "init_args": {"configuration": "3d_fullres", "plans": checkpoint["plans"],
                            "dataset_json": checkpoint["dataset_json"], "fold": 0},
              "inference_allowed_mirroring_axes": (0, 1, 2)}
    copy = tmp_path / "Dataset998_Synthetic" / MODEL
    shutil.copytree(folder, copy)
    torch.save(nnunet, copy / "fold_0" / "checkpoint_final.pth")
    from_nnunet = Predictor.from_results_folder(copy, (0,), device="cpu").predict_preprocessed_case(data)
    assert torch.allclose(from_nnunet, expected, atol=1e-4)


def test_2d_model_predicts_volumes(trained_env, tmp_path):
    predictor = Predictor.from_results_folder(model_folder(trained_env, "nnUNetTrainer__nnUNetPlans__2d"), (0,),
                                              device="cpu", verbose=False)
    assert predictor.mirror_axes == (0, 1)
    source = trained_env["raw"] / DATASET / "imagesTs"
    (written,) = predictor.predict_from_files(source, tmp_path, num_processes_preprocessing=0,
                                              num_processes_export=0)
    assert nib.load(str(written)).shape == nib.load(str(source / "synthetic_ts000_0000.nii.gz")).shape


def test_continue_prediction_skips_existing_outputs(trained_env, predictor, tmp_path):
    source = trained_env["raw"] / DATASET / "imagesTs"
    assert len(predictor.predict_from_files(source, tmp_path, num_processes_preprocessing=0,
                                            num_processes_export=0)) == 1
    assert predictor.predict_from_files(source, tmp_path, overwrite=False, num_processes_preprocessing=0,
                                        num_processes_export=0) == []


# ------------------------------------------------------------------------------------------------- bad input
def test_missing_channel_names_the_case(trained_env, predictor, tmp_path):
    (tmp_path / "in").mkdir()
    shutil.copy(training_image(trained_env), tmp_path / "in" / "patient7_0001.nii.gz")
    with pytest.raises(InputCaseError, match=r"case patient7: .*patient7_0000\.nii\.gz"):
        predictor.predict_from_files(tmp_path / "in", tmp_path / "out", num_processes_preprocessing=0,
                                     num_processes_export=0)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.nii.gz"))


def test_empty_or_misnamed_input_folder(predictor, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.nii.gz").write_bytes(b"")
    with pytest.raises(InputCaseError, match=r"no input image named CASE_XXXX\.nii\.gz.*scan\.nii\.gz"):
        list_input_cases(tmp_path / "in", predictor.dataset)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_input_cases(tmp_path / "missing", predictor.dataset)


def test_images_that_do_not_follow_the_naming_are_listed_not_skipped(predictor, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "case1_0000.nii.gz").write_bytes(b"")
    (tmp_path / "in" / "case2.nii.gz").write_bytes(b"")
    (tmp_path / "in" / "case3_t1.nii.gz").write_bytes(b"")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    with pytest.raises(InputCaseError, match=r"2 image file\(s\) do not follow the naming.*case2\.nii\.gz, case3_t1"):
        list_input_cases(tmp_path / "in", predictor.dataset)


def two_channel_predictor(trained_env):
    """The 3d_fullres model's plans with two input channels and a matching fresh network."""
    folder = model_folder(trained_env)
    plans = PlansManager(folder / "plans.json").plans
    cfg = plans["configurations"]["3d_fullres"]
    cfg["normalization_schemes"] = ["ZScoreNormalization"] * 2
    cfg["use_mask_for_norm"] = [False, False]
    intensities = plans["foreground_intensity_properties_per_channel"]
    intensities["1"] = intensities["0"]
    dataset_json = json.loads((folder / "dataset.json").read_text())
    dataset_json["channel_names"] = {"0": "T1", "1": "T2"}
    from monai_nnunet.training.configs import resolve_trainer

    net = resolve_trainer(None).build_network(PlansManager(plans).get_configuration("3d_fullres"), 2, 3,
                                              deep_supervision=False)
    return Predictor.from_networks(net, plans, "3d_fullres", dataset_json, device="cpu", verbose=False)


def test_channels_with_different_geometry_name_the_case(trained_env, tmp_path):
    predictor = two_channel_predictor(trained_env)
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(training_image(trained_env, "synthetic_tr001"), inputs / "mixed_0000.nii.gz")
    shutil.copy(training_image(trained_env, "synthetic_tr002"), inputs / "mixed_0001.nii.gz")  # another shape
    with pytest.raises(CasePredictionError, match=r"case mixed: mixed_0001\.nii\.gz has shape"):
        predictor.predict_from_files(inputs, tmp_path / "out", num_processes_preprocessing=0, num_processes_export=0)
    # the same check inside a DataLoader worker comes back as a message, not a worker traceback
    item = PreprocessingDataset(list_input_cases(inputs, predictor.dataset), predictor.plans, "3d_fullres")[0]
    assert item["data"] is None and "case mixed" in item["error"] and "Traceback" not in item["error"]
    # same shape, other spacing
    write_with_geometry(training_image(trained_env, "synthetic_tr001"), inputs / "mixed_0001.nii.gz",
                        (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    with pytest.raises(CasePredictionError, match=r"case mixed: .*differ in spacing, origin or direction"):
        predictor.predict_from_files(inputs, tmp_path / "out", num_processes_preprocessing=0, num_processes_export=0)


def test_missing_fold_lists_the_trained_folds(trained_env):
    with pytest.raises(ModelLoadingError, match=r"fold 3 .*has not been trained.*fold_0, fold_1"):
        Predictor.from_results_folder(model_folder(trained_env), (0, 3), device="cpu")
    with pytest.raises(ModelLoadingError, match=r"fold all .*fold_0, fold_1"):
        Predictor.from_results_folder(model_folder(trained_env), ("all",), device="cpu")


def test_missing_checkpoint_lists_the_checkpoints(trained_env):
    with pytest.raises(ModelLoadingError, match=r"checkpoint_best\.pth does not exist.*checkpoint_final\.pth"):
        Predictor.from_results_folder(model_folder(trained_env), (0,), "checkpoint_best.pth", device="cpu")


def test_unknown_model_folder_lists_the_trained_models(trained_env):
    with pytest.raises(ModelLoadingError, match=r"3d_lowres.*nnUNetTrainer__nnUNetPlans__2d, "
                                                r"nnUNetTrainer__nnUNetPlans__3d_fullres"):
        model_output_folder(998, "nnUNetTrainer", "nnUNetPlans", "3d_lowres")
    with pytest.raises(ModelLoadingError, match=r"kiunet__nnUNetPlans__3d_fullres does not exist"):
        model_output_folder(998, "kiunet", "nnUNetPlans", "3d_fullres")
    with pytest.raises(LookupError, match=r"No dataset with id 5 .*Datasets with trained models in .*: "
                                          r"Dataset998_Synthetic"):
        model_output_folder(5, "nnUNetTrainer", "nnUNetPlans", "3d_fullres")


def test_weights_that_do_not_fit_are_reported(trained_env, tmp_path):
    folder = tmp_path / "Dataset998_Synthetic" / MODEL
    shutil.copytree(model_folder(trained_env), folder)
    checkpoint = torch.load(folder / "fold_0" / "checkpoint_final.pth", weights_only=True)
    checkpoint["network_weights"] = {k: v for k, v in checkpoint["network_weights"].items()
                                     if not k.startswith("output_block")}
    torch.save(checkpoint, folder / "fold_0" / "checkpoint_final.pth")
    pattern = r"fold_0/checkpoint_final.pth does not fit.*missing \(e\.g\. \[.output_block"
    with pytest.raises(ModelLoadingError, match=pattern):
        Predictor.from_results_folder(folder, (0,), device="cpu")


def test_unavailable_device_is_a_clear_error(trained_env):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        Predictor.from_results_folder(model_folder(trained_env), (0,), device="cuda")


def test_from_networks_leaves_a_training_network_as_it_was(trained_env, predictor):
    """What a trainer's validation does: its network, in training mode with deep supervision on."""
    from monai_nnunet.training.configs import resolve_trainer

    folder = model_folder(trained_env)
    plans = json.loads((folder / "plans.json").read_text())
    dataset_json = json.loads((folder / "dataset.json").read_text())
    net = resolve_trainer(None).build_network(predictor.configuration, 1, 3, deep_supervision=True)
    net.load_state_dict(predictor.model.networks[0].state_dict())
    net.train()
    live = Predictor.from_networks(net, plans, "3d_fullres", dataset_json, verbose=False)
    assert live.device == torch.device("cpu") and live.mirror_axes == (0, 1, 2)
    data = np.load(trained_env["preprocessed"] / DATASET / "nnUNetPlans_3d_fullres" / "synthetic_tr002.npy")
    logits = live.predict_preprocessed_case(data)
    assert net.training
    assert torch.allclose(logits, predictor.predict_preprocessed_case(data), atol=1e-5)
