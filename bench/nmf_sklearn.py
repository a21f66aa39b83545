#!/usr/bin/python3
"""Peer measurement for bench-nmf: scikit-learn's NMF on the same Matrix Market file.

usage: nmf_sklearn.py MATRIX.mtx K ITERS SEED [trace]
Prints one line: sklearn_seconds=... sklearn_cpu=... sklearn_error=... sklearn_iters=...
(seconds: wall time of fit_transform, initialisation included; cpu: process CPU time, all threads)
With "trace", a second, separate run repeats fit_transform's own steps (the same
initialisation, then the same coordinate-descent update per iteration, no shuffle, no
regularisation) and also prints sklearn_trace=T0:E0,T1:E1,... : the cumulative time of the
initialisation and updates (the error evaluations excluded) and the error after each
iteration, computed as reconstruction_err_ is.
(error is sklearn's reconstruction_err_, the Frobenius norm ||X - WH||).
"""
import sys
import time
import warnings

import numpy as np
import scipy.io
import scipy.sparse
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning


def trace(X, k, iters, seed):
    """The error after each iteration of the same computation as NMF(solver="cd").fit."""
    # Private helpers of scikit-learn 1.2's _fit_coordinate_descent, called in its order.
    from sklearn.decomposition._nmf import (_beta_divergence, _initialize_nmf,
                                            _update_coordinate_descent)
    rng = np.random.RandomState(seed)
    start = time.perf_counter()
    W, H = _initialize_nmf(X, k, init="nndsvda", random_state=seed)
    Ht = np.ascontiguousarray(H.T)
    spent = time.perf_counter() - start
    points = [(spent, _beta_divergence(X, W, Ht.T, 2, square_root=True))]
    for _ in range(iters):
        start = time.perf_counter()
        _update_coordinate_descent(X, W, Ht, 0.0, 0.0, False, rng)
        _update_coordinate_descent(X.T, Ht, W, 0.0, 0.0, False, rng)
        spent += time.perf_counter() - start
        points.append((spent, _beta_divergence(X, W, Ht.T, 2, square_root=True)))
    return points


def main():
    path, k, iters, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    X = scipy.sparse.csr_matrix(scipy.io.mmread(path), dtype="float64")
    model = NMF(n_components=k, solver="cd", init="nndsvda", tol=0, max_iter=iters,
                random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start, cpu = time.perf_counter(), time.process_time()
        model.fit_transform(X)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"sklearn_seconds={seconds:.3f} sklearn_cpu={cpu:.3f} sklearn_error={model.reconstruction_err_:.6f} "
          f"sklearn_iters={model.n_iter_}", flush=True)
    if len(sys.argv) > 5 and sys.argv[5] == "trace":
        points = trace(X, k, iters, seed)
        print("sklearn_trace=" + ",".join(f"{t:.4f}:{e:.6f}" for t, e in points))


if __name__ == "__main__":
    main()
