"""Errors raised while MONAI's config parser builds a bundle component reach the user as their own message, with
the component named, without the parser's wrapper lines."""

from monai.bundle import ConfigParser

from monai_nnunet.utils.errors import describe_error


def test_config_parser_wrappers_are_left_out():
    parser = ConfigParser({"network_def": {"_target_": "monai_nnunet.networks.custom.DynamicKiUNet",
                                           "input_channels": 1, "n_stages": 3, "features_per_stage": [4, 8, 16],
                                           "conv_op": "torch.nn.Conv3d", "kernel_sizes": 3, "strides": [1, 2, 2],
                                           "n_conv_per_stage": 2, "num_classes": 2, "n_conv_per_stage_decoder": 2,
                                           "pool_type": "avg"}})
    try:
        parser.get_parsed_content("network_def")
    except Exception as e:  # MONAI wraps the ValueError of the network in a RuntimeError of its own
        message = describe_error(e)
    else:
        raise AssertionError("the bad pool_type was accepted")
    assert message.startswith("pool_type must be one of")
    assert "DynamicKiUNet" in message and "_mode_" not in message and "Failed to instantiate" not in message
