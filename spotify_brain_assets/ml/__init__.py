"""Mood clusters, datasets, classifiers, evaluation and drift: pure functions over DataFrames."""
