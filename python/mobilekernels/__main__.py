"""Command line: ``python -m mobilekernels info``."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobilekernels")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="CPU features, compiled paths, kernel picks")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)

    import mobilekernels

    if args.command == "info":
        d = mobilekernels.info()
        if args.json:
            print(json.dumps(d, indent=2))
        else:
            from ._info import format_info

            print(format_info(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
