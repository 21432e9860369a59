import os

# Two cores on CI: keep each test process to one BLAS/torch thread so tests do not fight.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
