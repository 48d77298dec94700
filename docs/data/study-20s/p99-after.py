#!/usr/bin/env python3
"""p99-after.py RUN_DIR...: each service's p99 latency after the last apoptosis.

For every run directory (as `maxwell study` writes them), take the requests
a service completed from the first counters sample more than 1 s after the
run's last apoptosis to the end of the run, from the cumulative latency
histogram in counters.csv (latency_le_us_BOUND), and print the bound of the
first bucket that holds 99 % of them (an upper bound, like the study's own
p99). Used for docs/BENCHMARKS.md §14.
"""
import csv
import json
import sys


def seconds(elapsed):
    """A Go duration as events.jsonl writes it ("3.12s", "850ms") in seconds."""
    if elapsed.endswith("ms"):
        return float(elapsed[:-2]) / 1000
    return float(elapsed.rstrip("s"))


def main(dirs):
    for d in dirs:
        events = [json.loads(line) for line in open(d + "/events.jsonl")]
        last = max([seconds(e["elapsed"]) for e in events if e.get("kind") == "apoptosis"] or [0])
        rows = [r for r in csv.DictReader(open(d + "/counters.csv"))
                if r["cell"].startswith("service") and r["counter"].startswith("latency_le_us_")]
        out = []
        for cell in sorted({r["cell"] for r in rows}):
            at = {}
            for r in rows:
                if r["cell"] == cell:
                    at.setdefault(float(r["elapsed_seconds"]), {})[r["counter"][len("latency_le_us_"):]] = float(r["value"])
            times = sorted(at)
            after = [t for t in times if t > last + 1]
            if not after:
                out.append(f"{cell}: no sample after {last:.1f} s")
                continue
            first, end = at[after[0]], at[times[-1]]
            n = end["inf"] - first["inf"]
            if n <= 0:
                out.append(f"{cell}: no requests after {last:.1f} s")
                continue
            for bound in sorted((b for b in end if b != "inf"), key=float) + ["inf"]:
                if end[bound] - first.get(bound, 0) >= 0.99 * n:
                    out.append(f"{cell}: p99 <= {bound} us over {int(n)} requests after {last:.1f} s")
                    break
        print(d.rstrip("/").split("/")[-1] + ": " + "; ".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
