"""Suite-wide settings: one torch thread in every test; the PostgreSQL server fixtures
(``postgres_server``, ``postgres_url``; see ``postgres_server.py``).

The models in the tests are small, where a second thread gains little, and on a
machine with other work running, OpenMP threads that spin-wait for a busy core
can slow a run down by orders of magnitude. The fixture also restores the count
after each test, so a test that asks for more threads (``--threads 2``) does not
change the ones after it.
"""

import pytest
import torch

from postgres_server import postgres_server, postgres_url  # noqa: F401 - fixtures

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
