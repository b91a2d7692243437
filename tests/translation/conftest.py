"""One thread for the translation tests: models this small train several times faster on one thread than
on two contended ones (the thread count is restored after each module)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
