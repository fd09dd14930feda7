"""``python -m bench``: the update-throughput benchmark (see :mod:`bench.throughput`)."""

from bench.throughput import main

raise SystemExit(main())
