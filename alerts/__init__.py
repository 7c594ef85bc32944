"""Code that runs in the alarm relay Lambda (components/monitoring.py deploys it).

Standard library only, and never imports the rest of the project: the function's bundle is
this package alone.
"""
