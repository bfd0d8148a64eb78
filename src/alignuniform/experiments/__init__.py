"""Experiments built on trained run directories: the paper's figures and sweeps.

- `alignuniform.experiments.sphere`: Fig. 3, encoders with a 2-d output on the circle.
"""
