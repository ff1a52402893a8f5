import pytest


@pytest.fixture(autouse=True)
def _one_thread(single_thread):
    """Every test in this folder runs with one intra-op thread (``single_thread``, tests/conftest.py)."""
