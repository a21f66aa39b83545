#!/usr/bin/python3
"""Peer measurement for bench-nmf: scikit-learn's NMF on the same Matrix Market file.

usage: nmf_sklearn.py MATRIX.mtx K ITERS SEED
Prints one line: sklearn_seconds=... sklearn_cpu=... sklearn_error=... sklearn_iters=...
(seconds: wall time of fit_transform, initialisation included; cpu: process CPU time, all threads)
(error is sklearn's reconstruction_err_, the Frobenius norm ||X - WH||).
"""
import sys
import time
import warnings

import scipy.io
import scipy.sparse
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning


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
          f"sklearn_iters={model.n_iter_}")


if __name__ == "__main__":
    main()
