"""Summarise py-spy's folded stacks (`make bench --profile` writes them to reports/profiles/*.folded).

    .venv/bin/python -m bench.profile_summary reports/profiles/worker-at_least_once-1w-0.folded [--top 15]

For each process in the file (py-spy's `--subprocesses` puts one root frame per process), prints the share of
samples by where the innermost frame runs (the Kafka client, pydantic, the rules, the worker's loop, the hand-off
to the evaluator children, ...) and the functions with the most samples, innermost and inclusive. This is the
evidence the performance notes quote for "what bounds it".
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

# (name, path fragments) in order: the first that matches the innermost frame's file names its owner.
OWNERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kafka-python", ("/kafka/",)),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("rules", ("/rules/",)),
    ("schemas (claim parsing)", ("/schemas/",)),
    ("hand-off to the children (pickle, pipes, queues)", ("multiprocessing/", "pickle", "/queue.py", "copyreg")),
    ("json", ("/json/",)),
    ("structlog, logging", ("/structlog/", "/logging/")),
    ("prometheus-client", ("/prometheus_client/",)),
    ("worker", ("/worker/",)),
    ("waiting in select, sockets, thread waits", ("selectors.py", "socket.py", "ssl.py", "threading.py")),
)
_FRAME_FILE = re.compile(r"\(([^()]*):\d+\)$")


def parse(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """(frames from the root, samples) of each folded line."""
    stacks = []
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append((stack.split(";"), int(count)))
    return stacks


def owner(frame: str) -> str:
    match = _FRAME_FILE.search(frame)
    # py-spy shortens file names to their path under sys.path (kafka/consumer/group.py) unless --full-filenames.
    path = "/" + (match.group(1) if match else frame).lstrip("/")
    for name, fragments in OWNERS:
        if any(fragment in path for fragment in fragments):
            return name
    return "other (interpreter, standard library)"


def _process_of(frames: Sequence[str]) -> tuple[str, list[str]]:
    # py-spy nests a child's frames under its parent's process frame: the innermost process frame is the process.
    depth = 0
    while depth < len(frames) and frames[depth].startswith("process "):
        depth += 1
    if depth == 0:
        return "process", list(frames)
    return frames[depth - 1].split('"', 1)[0].strip(' :"'), list(frames[depth:])


def summarise(stacks: Sequence[tuple[list[str], int]], top: int) -> str:
    by_process: dict[str, list[tuple[list[str], int]]] = {}
    for frames, count in stacks:
        process, rest = _process_of(frames)
        by_process.setdefault(process, []).append((rest, count))
    out = []
    for process, entries in sorted(by_process.items(), key=lambda item: -sum(count for _, count in item[1])):
        total = sum(count for _, count in entries)
        owners: Counter[str] = Counter()
        leaves: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        for frames, count in entries:
            if not frames:
                continue
            owners[owner(frames[-1])] += count
            leaves[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
        out.append(f"## {process}: {total} samples")
        out.append("where the innermost frame runs:")
        out += [f"  {count / total:6.1%}  {name}" for name, count in owners.most_common()]
        out.append(f"top {top} innermost functions:")
        out += [f"  {count / total:6.1%}  {frame}" for frame, count in leaves.most_common(top)]
        out.append(f"top {top} inclusive (the function and what it calls):")
        out += [f"  {count / total:6.1%}  {frame}" for frame, count in inclusive.most_common(top)]
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folded", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    for path in args.folded:
        print(f"# {path}")
        print(summarise(parse(path.read_text().splitlines()), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
