"""Fuzzing ipsecdiag: codec targets and a whole-pipeline target (see fuzz/README.md).

Run from the repository root: ``python -m fuzz codec`` / ``python -m fuzz pipeline``. Every
escape (an exception other than the one a target is allowed to raise, or an input that exceeds
its time limit) is saved under ``fuzz/crashes/<target>/`` with its traceback; fixed escapes
become regression inputs under ``tests/regress/``.
"""
