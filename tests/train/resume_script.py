"""A training run for the kill-and-resume test.

    python resume_script.py OUT_DIR [--slow]

``--slow`` sleeps after every step so that the test can kill the process mid-run; it
changes no number. The final parameters are saved to OUT_DIR/final.pt.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from train_toys import make_problem  # noqa: E402

from optimlab.train import Callback, EarlyStopping, ReduceLROnPlateau, fit  # noqa: E402


class Sleep(Callback):
    def on_batch_end(self, step, logs):
        time.sleep(0.02)


def main(out: Path, slow: bool = False) -> str:
    """Train into ``out``; return the line the script prints."""
    torch.set_num_threads(1)
    problem = make_problem(seed=0, n=600, dropout=0.2)
    opt = torch.optim.Adam(problem.model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.995)
    callbacks = [
        EarlyStopping(patience=50, restore_best_weights=True),
        ReduceLROnPlateau(patience=1, factor=0.5),
    ]
    if slow:
        callbacks.append(Sleep())
    result = fit(
        problem,
        opt,
        epochs=6,
        batch_size=16,
        scheduler=sched,
        callbacks=callbacks,
        out_dir=out,
        checkpoint_every=7,
        log_every=3,
        config={"script": "resume_script", "epochs": 6},
    )
    torch.save(problem.model.state_dict(), out / "final.pt")
    return f"{result.status} {result.summary['steps']}"


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), slow="--slow" in sys.argv))
