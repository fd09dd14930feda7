"""``python -m bench [throughput|latency|import|campaign|memory] [options]``; none: all of them."""

import sys

from bench import campaign, imports, latency, memory, throughput

BENCHMARKS = {
    "throughput": throughput.main,
    "latency": latency.main,
    "import": imports.main,
    "campaign": campaign.main,
    "memory": memory.main,
}

args = sys.argv[1:]
if args and args[0] in BENCHMARKS:
    raise SystemExit(BENCHMARKS[args[0]](args[1:]))
if args and not args[0].startswith("-"):
    raise SystemExit(f"unknown benchmark {args[0]!r}; choose from {', '.join(BENCHMARKS)}")
for name, run in BENCHMARKS.items():
    print(f"== {name} ==", flush=True)
    status = run(args if name == "throughput" else [])
    if status:
        raise SystemExit(status)
