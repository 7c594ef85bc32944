"""The image catalogue: uploads, metadata on upload, and queries (regional Lambdas, never at the edge).

It may import `edge/` (the same limits, key rules and image code the CDN runs with);
`edge/` never imports it. `components/catalog.py` deploys it, `localcdn/catalog.py`
runs it in the emulator.
"""
