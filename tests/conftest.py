"""Suite-wide settings: one torch thread per test process.

The models in the tests are small, where a second thread gains little, and on a
machine with other work running, OpenMP threads that spin-wait for a busy core
can slow a run down by orders of magnitude.
"""

import torch

torch.set_num_threads(1)
