"""`python -m ops <command>`: operator commands."""

from __future__ import annotations

import sys

COMMANDS = {"sync": "ops.backfill", "drill": "ops.drill"}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(
            f"usage: python -m ops {{{','.join(COMMANDS)}}} --stack STACK [options]  (--help for each)", file=sys.stderr
        )
        return 2
    import importlib

    command = importlib.import_module(COMMANDS[sys.argv[1]])
    return int(command.main(sys.argv[2:]))


if __name__ == "__main__":
    sys.exit(main())
