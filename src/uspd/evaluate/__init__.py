"""Evaluation: metrics on decision streams (metrics.py), the runner over labelled recordings (runner.py), the
table (report.py), the evaluation-set builder (dataset.py) and the seed-range convention (seeds.py)."""
