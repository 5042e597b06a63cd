"""Argument helpers shared by the commands."""

from __future__ import annotations

import argparse

__all__ = ["add_num_processes", "positive_int"]


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def add_num_processes(parser: argparse.ArgumentParser, flag: str = "-np", help_extra: str = "") -> None:
    parser.add_argument(
        flag, type=positive_int, nargs="+", default=None, metavar="N",
        help="worker processes (default: $nnUNet_def_n_proc or the CPU count, at most 8)" + help_extra,
    )
