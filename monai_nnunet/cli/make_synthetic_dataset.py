"""``monai-nnunet make-synthetic-dataset [-o $nnUNet_raw] [-d 998] [--num_cases 20] [--spacing 1 1 1] ...``"""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output_folder", default=None, help="raw data root (default: $nnUNet_raw)")
    parser.add_argument("-d", "--dataset_id", type=int, default=998, help="dataset id (default 998)")
    parser.add_argument("--name", default="Synthetic", help="dataset name (default Synthetic)")
    parser.add_argument("--num_cases", type=positive_int, default=20, help="training cases (default 20)")
    parser.add_argument("--num_test_cases", type=int, default=2, help="cases in imagesTs (default 2)")
    parser.add_argument("--shape", type=positive_int, nargs=3, default=[32, 40, 36], help="z y x (default 32 40 36)")
    parser.add_argument("--spacing", type=float, nargs=3, default=[1.0, 1.0, 1.0], help="z y x in mm (default 1 1 1)")
    parser.add_argument("--num_classes", type=positive_int, default=2, help="foreground classes (default 2)")
    parser.add_argument("--blobs_per_class", type=positive_int, default=3, help="blobs per class (default 3)")
    parser.add_argument("--num_channels", type=positive_int, default=1, help="image channels (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet import paths
    from monai_nnunet.dataset.synthetic import make_synthetic_dataset

    folder = make_synthetic_dataset(
        args.output_folder or paths.nnunet_raw(), args.dataset_id, args.name, args.num_cases, args.shape,
        args.spacing, args.num_classes, args.blobs_per_class, args.num_channels, args.num_test_cases, args.seed,
    )
    print(f"Wrote {folder}")
