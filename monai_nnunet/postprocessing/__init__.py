"""Connected-component post-processing, as nnU-Net v2's ``nnUNetv2_determine_postprocessing`` and
``nnUNetv2_apply_postprocessing``.

- :mod:`~monai_nnunet.postprocessing.connected_components`: keep the largest component of a label or region.
- :mod:`~monai_nnunet.postprocessing.remove_connected_components`: choose the post-processing on cross-validation
  results; apply it to a folder.
- :mod:`~monai_nnunet.postprocessing.postprocessing_file`: ``postprocessing.json`` (read) and nnU-Net's
  ``postprocessing.pkl`` (written, never read).
- :mod:`~monai_nnunet.postprocessing.pickle_writer`: pickle bytes of plain data, written without importing anything.
"""

# the evaluation package is initialised first: its find_best_configuration uses this package, and this package's
# modules use evaluation's metrics and summaries
import monai_nnunet.evaluation  # noqa: F401  (isort: skip)
from monai_nnunet.postprocessing.connected_components import (
    apply_postprocessing,
    remove_all_but_largest_component,
    remove_all_but_largest_component_from_segmentation,
)
from monai_nnunet.postprocessing.postprocessing_file import (
    NNUNET_MODULE,
    STEP_FUNCTIONS,
    load_postprocessing,
    postprocessing_json_for,
    save_postprocessing,
)
from monai_nnunet.postprocessing.remove_connected_components import (
    apply_postprocessing_to_folder,
    determine_postprocessing,
    load_postprocess_save,
)

__all__ = [
    "NNUNET_MODULE",
    "STEP_FUNCTIONS",
    "apply_postprocessing",
    "apply_postprocessing_to_folder",
    "determine_postprocessing",
    "load_postprocess_save",
    "load_postprocessing",
    "postprocessing_json_for",
    "remove_all_but_largest_component",
    "remove_all_but_largest_component_from_segmentation",
    "save_postprocessing",
]
