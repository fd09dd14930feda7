"""Benchmarks for carebot (``make bench`` runs ``python -m bench``); not part of ``make test``."""

import os

# PTB 22 warns about RetryAfter's int retry_after unless timedeltas are switched on; this has
# to happen before anything imports ``telegram``.
os.environ.setdefault("PTB_TIMEDELTA", "true")
