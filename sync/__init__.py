"""The sync job: keeps the fallback bucket full (a regional Lambda and its state machine, never at the edge).

`job.py` is the function (`sync.job.handler`), with where it reads originals from (`sources.py`)
and how it invalidates within CloudFront's limits (`invalidation.py`); `backfill.py` runs the
same reconcile on one machine (`python -m ops sync`, the emulator, the benchmarks) and is not in
the function's bundle. It may import `edge/` (the same settings, grammar and image code the CDN
runs with); `edge/` never imports it. `components/sync_job.py` deploys it.
"""
