"""The folded-stack summary the performance notes quote (bench/profile_summary.py)."""

from __future__ import annotations

from bench.profile_summary import owner, parse, summarise

FOLDED = """\
process 11:"python -m worker";run (worker/loop.py:93);poll (kafka/consumer/group.py:700);_parse (kafka/record/x.py:3) 60
process 11:"python -m worker";run (worker/loop.py:93);deliver (worker/sink.py:120) 40
process 11:"python -m worker";process 12:"python -m worker";validate (rules/engine.py:85);check (rules/x.py:20) 30
process 11:"python -m worker";process 12:"python -m worker";validate_json (pydantic/main.py:847) 70
"""


def test_each_process_is_summarised_apart_with_its_own_shares() -> None:
    # py-spy nests a forked child's stacks under its parent's process frame

    text = summarise(parse(FOLDED.splitlines()), top=5)
    main, child = text.split("## process 12")
    assert "## process 11: 100 samples" in main
    assert " 60.0%  kafka-python" in main
    assert " 40.0%  worker" in main
    assert ": 100 samples" in child
    assert " 70.0%  pydantic" in child
    assert " 30.0%  rules" in child


def test_inclusive_counts_a_frame_once_per_stack() -> None:
    text = summarise(parse(["a (x.py:1);b (x.py:2);a (x.py:1) 10", "a (x.py:1) 10"]), top=5)
    assert "100.0%  a (x.py:1)" in text  # 20 of 20 samples, not 30


def test_the_owner_is_taken_from_the_innermost_frames_file() -> None:
    assert owner("send (/venv/lib/python3.11/site-packages/kafka/producer/kafka.py:600)") == "kafka-python"
    assert owner("dumps (/usr/lib/python3.11/json/encoder.py:200)") == "json"
    assert owner("<module> (somewhere.py:1)").startswith("other")


def test_lines_that_are_not_folded_stacks_are_ignored() -> None:
    assert parse(["", "no count here", "a;b 3"]) == [(["a", "b"], 3)]
