"""The screening lab: research tools beside the product, never inside it.

The FDA facial/oral temperature study read as readings (dataset), the fitting methods (fit), metrics and
operating points (roc), cross-validation by subject (validate), the shipped calibration's fit
(calibration), `checkpoint-gateway evaluate` (evaluate) and docs/screening.md's generated parts (docs,
tables), fairness by sex and age (fairness), and the arithmetic of the per-unit reference check
(reference), the drift monitor (drift) and the field loop (field). Every estimate goes through
firmware/screening.py, the math the node and the gateway run; the running gateway imports none of this
(tests/lab/test_lab_boundary.py).
"""
