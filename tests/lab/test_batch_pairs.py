"""The batch-pairs experiment: its "same" pair is the one optimlab's L-BFGS forms, its
"fresh" pair the textbook's across two batches."""

from __future__ import annotations

import torch

from optimlab import problems
from optimlab.lab import batch_pairs as bp
from optimlab.train import fit


def test_the_pairs_are_those_the_optimizers_form():
    problem = problems.build(bp.PROBLEM, seed=0)
    opt = bp._Recording(problem.model.parameters(), max_iter=1, history_size=bp.HISTORY,
                        line_search_fn="strong_wolfe")  # fmt: skip
    fit(problem, opt, steps=6, batch_size=128, seed=0, evaluate_test=False, train_metrics=False)
    (w0, g0, batch0), (w1, g1, batch1) = opt.records[-2], opt.records[-1]
    assert not torch.equal(batch0.x, batch1.x)  # a fresh batch every iteration
    state = opt.state[next(problem.model.parameters())]
    # the last step's pair (s, y) is stored as soon as its line search ends: it is the
    # same-batch pair of the two iterates before and after that step
    w2 = torch.cat([p.detach().reshape(-1) for p in problem.model.parameters()])
    s, y = state["s_history"][-1], state["y_history"][-1]
    torch.testing.assert_close(s, w2 - w1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y, bp._gradient(batch1, w2) - g1, rtol=1e-4, atol=1e-5)
    # the gradients recorded are the batches' own at the recorded points
    torch.testing.assert_close(g0, bp._gradient(batch0, w0), rtol=1e-5, atol=1e-6)


def test_summary_of_the_pairs():
    measured = [bp.pairs(steps=20, batch_size=128, seed=0)]
    fresh, same = bp.summary(measured, "fresh"), bp.summary(measured, "same")
    assert fresh["pairs"] == same["pairs"] == 19 - measured[0].unmoved
    assert same["nonpositive"] == 0.0  # one convex batch loss: s . y >= 0
    assert fresh["median_error"] > same["median_error"]
