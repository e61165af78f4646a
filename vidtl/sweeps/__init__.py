"""Hydra callbacks of multiruns: ``results.csv`` when a sweep ends (``conf/hydra/default.yaml``)."""
