"""`python -m ops <command>`: operator commands."""

from __future__ import annotations

import sys

COMMANDS = {
    "sync": ("ops.backfill", "main"),
    "drill": ("ops.drill", "main"),
    "upload": ("ops.catalog", "upload_main"),
    "images": ("ops.catalog", "images_main"),
    "sign": ("ops.sign", "main"),
    "cost": ("ops.cost", "main"),
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(
            f"usage: python -m ops {{{','.join(COMMANDS)}}} --stack STACK [options]  (--help for each)", file=sys.stderr
        )
        return 2
    import importlib

    module, function = COMMANDS[sys.argv[1]]
    return int(getattr(importlib.import_module(module), function)(sys.argv[2:]))


if __name__ == "__main__":
    sys.exit(main())
