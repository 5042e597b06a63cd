"""One intra-op thread for the network tests: the machine's cores are shared, and tiny networks gain nothing."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
