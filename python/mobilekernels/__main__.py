"""Command line: ``python -m mobilekernels info`` and ``python -m mobilekernels bench``."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobilekernels")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="CPU features, compiled paths, kernel picks")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("bench", help="whole-model benchmark vs PyTorch (see --help)", add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from .benchmark import main as bench_main

        return bench_main(argv[1:])
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
