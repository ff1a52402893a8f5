import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    """One intra-op thread: deterministic results and no slowdown on a shared 2-core box."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
