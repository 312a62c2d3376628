"""Seeing optimization: trajectories on 2-D functions, momentum dynamics on quadratics,
Hessian tools, bias and variance, loss landscapes and Wilson et al.'s toy.

Each module builds its numbers first (plain arrays, testable against closed forms) and
draws them second, with the shared style of :mod:`optimlab.viz.style`.
"""
