"""Fault injection against a real broker and real `claims-worker run` processes (`make chaos`, `scripts/chaos`).

Ten scenarios, each in both delivery modes, with claim history on: the five of issue 8 (repeated `kill -9`, a
broker restart, a broker outage longer than `CLAIMS_MAX_OUTAGE_S`, rebalances, SIGTERM mid-batch) and the five of
issue 12 (kills between the changelog writes and the commit and between the commit and the local store write,
deleted and corrupted stores, rebalances in the middle of restores, a crashed transactional writer holding the
changelog's end). Every scenario uses fresh topics; afterwards the whole input topic and every output topic are
read back (`read_committed`) and each output is matched to its input by Kafka coordinates (a verdict's `source`, a
dead letter's `dlq.source.*` headers), and the history oracle folds the committed repartition order and compares
each history verdict with its own. The report (`reports/chaos.json`) has one entry per scenario and mode; the run
fails when an input has no output, when an output answers no input, (exactly_once) when an input has more than
one output, or when a history verdict is not the oracle's.

Modules: `broker` (a throwaway broker from `scripts/kafka-local`), `workers` (worker subprocesses and their JSON
logs), `faulty_worker` (the worker's CLI with one fault armed at an exact point), `traffic` (claims and a paced
publisher), `ledger` (reading topics back and matching), `oracle` (the history fold), `scenarios` and
`history_scenarios`.
"""
