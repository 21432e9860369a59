import os
import signal

# Two cores on CI: keep each test process to one BLAS/torch thread so tests do not fight.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# The Ctrl-C tests send SIGINT to this process and expect Python's KeyboardInterrupt. A shell without
# job control (a script running `make test &`, nohup) starts its background children with SIGINT
# ignored, and Python then keeps it ignored; give the tests the handler an interactive run has.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _load_script(name: str):
    """Import ``scripts/<name>.py`` as a module (the benchmark scripts are not part of the package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_script():
    """``load_script("bench_rl")`` -> the module of ``scripts/bench_rl.py``."""
    return _load_script
