"""Operator commands: `python -m ops sync --stack dev` (see README, "Keeping the fallback full")."""
