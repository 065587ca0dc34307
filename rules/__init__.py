"""The J9353 rules module: policy data, rule functions and the engine that turns a claim into a verdict.

This package knows nothing of Kafka, metrics or logging (see worker/ for those).
"""
