"""Event contracts of the claim validation worker: claim.submitted v1 in, claim.validated v1 out, dead letters.

This package knows nothing of Kafka, metrics or logging.
"""
