"""Evaluation: data sets, metrics, the results store and the ``evaluate`` command."""
