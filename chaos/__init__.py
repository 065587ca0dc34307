"""Fault injection against a real broker and real `claims-worker run` processes (`make chaos`, `scripts/chaos`).

Five scenarios, each in both delivery modes: repeated `kill -9`, a broker restart, a broker outage longer than
`CLAIMS_MAX_OUTAGE_S`, rebalances (three workers, one killed, one added) and SIGTERM mid-batch. Every scenario
uses fresh topics; afterwards the whole input topic and every output topic are read back (`read_committed`) and
each output is matched to its input by Kafka coordinates (a verdict's `source`, a dead letter's `dlq.source.*`
headers). The report (`reports/chaos.json`) has one entry per scenario and mode; the run fails when an input has
no output, when an output answers no input, or (exactly_once) when an input has more than one output.

Modules: `broker` (a throwaway broker from `scripts/kafka-local`), `workers` (worker subprocesses and their JSON
logs), `traffic` (claims and a paced publisher), `ledger` (reading topics back and matching), `scenarios`.
"""
