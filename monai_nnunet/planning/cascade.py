"""What a cascade stage (a configuration with ``previous_stage``, nnU-Net's ``3d_cascade_fullres``) takes as input:
the image channels and one one-hot channel per foreground label of the previous stage's segmentation (nnU-Net's
``determine_num_input_channels``)."""

from __future__ import annotations

from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.planning.plans import ConfigurationManager

__all__ = ["cascade_input_labels", "network_input_channels"]


def cascade_input_labels(configuration: ConfigurationManager, dataset: DatasetDescription) -> list[int]:
    """The labels given to a cascade stage as one-hot input channels, in channel order (the dataset's foreground
    labels); ``[]`` for a configuration without a previous stage."""
    if configuration.previous_stage_name is None:
        return []
    return [int(v) for v in dataset.foreground_labels]


def network_input_channels(configuration: ConfigurationManager, dataset: DatasetDescription) -> int:
    """The network's input channels: the image channels, plus the one-hot channels of a cascade stage."""
    return dataset.num_channels + len(cascade_input_labels(configuration, dataset))
