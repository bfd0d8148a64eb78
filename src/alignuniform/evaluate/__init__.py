"""Evaluation the paper's way: linear and k-NN probes on any layer, k-fold CV, depth regression.

    from alignuniform.evaluate import evaluate_run, format_table
    print(format_table(evaluate_run("runs/x")))       # writes runs/x/eval.json

Building blocks: `extract_features` / `FeatureCache` (features.py), `fit_linear_probe` (linear.py),
`knn_predict` (knn.py), `cross_validate` (cv.py), `train_paper_probe` (paper_probe.py),
`layer_geometry` (geometry.py), and the NYU-Depth-V2 probe (depth.py).
"""

from alignuniform.evaluate.cv import cross_validate, kfold_assignment
from alignuniform.evaluate.depth import DepthDecoder, evaluate_depth
from alignuniform.evaluate.features import FeatureCache, encoder_fingerprint, extract_features
from alignuniform.evaluate.geometry import layer_geometry
from alignuniform.evaluate.knn import knn_accuracy, knn_predict, nearest_neighbors
from alignuniform.evaluate.linear import LinearProbe, fit_linear_probe, linear_probe_accuracy
from alignuniform.evaluate.paper_probe import train_paper_probe
from alignuniform.evaluate.run import EvalOptions, evaluate_encoder, evaluate_run, write_results
from alignuniform.evaluate.table import format_table

__all__ = [
    "DepthDecoder",
    "EvalOptions",
    "FeatureCache",
    "LinearProbe",
    "cross_validate",
    "encoder_fingerprint",
    "evaluate_depth",
    "evaluate_encoder",
    "evaluate_run",
    "extract_features",
    "fit_linear_probe",
    "format_table",
    "kfold_assignment",
    "knn_accuracy",
    "knn_predict",
    "layer_geometry",
    "linear_probe_accuracy",
    "nearest_neighbors",
    "train_paper_probe",
    "write_results",
]
