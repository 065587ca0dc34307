"""Input adapters: the claim formats pipelines carry (X12 837P/837I, FHIR R4 Claim bundles) as claim.submitted v1.

A package of its own, beside `schemas/`: `schemas/` is the contract and the worker's hot path, and must not pull in
pyx12 or fhir.resources (each takes hundreds of milliseconds to import and validate); the adapters run in front of
the contract, in `claims-worker convert/validate/publish`, never inside the Kafka loop. Like `schemas/` and `rules/`,
this package knows nothing of Kafka, metrics or structlog.

Entry point: `adapters.convert.convert_bytes` (bytes of a file in, claim event records or one coded failure out).
"""
