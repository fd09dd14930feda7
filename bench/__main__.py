"""``python -m bench [throughput|latency|import|campaign|memory] [options]``; none: all of them,
then one table of every figure. ``python -m bench summary`` prints that table from the latest
results without measuring again."""

import sys

from bench import campaign, imports, latency, memory, summary, throughput

BENCHMARKS = {
    "throughput": throughput.main,
    "latency": latency.main,
    "import": imports.main,
    "campaign": campaign.main,
    "memory": memory.main,
}

args = sys.argv[1:]
if args == ["summary"]:
    raise SystemExit(summary.print_combined())
if args and args[0] in BENCHMARKS:
    raise SystemExit(BENCHMARKS[args[0]](args[1:]))
if args and not args[0].startswith("-"):
    raise SystemExit(
        f"unknown benchmark {args[0]!r}; choose from {', '.join(BENCHMARKS)} or summary"
    )
for name, run in BENCHMARKS.items():
    print(f"== {name} ==", flush=True)
    status = run(args if name == "throughput" else [])
    if status:
        raise SystemExit(status)
print("== all benchmarks ==", flush=True)
raise SystemExit(summary.print_combined())
