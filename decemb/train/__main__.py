"""``python -m decemb.train CONFIG.yaml --out DIR [--set key=value ...] [--threads N]``: the ``decemb train``
command without going through ``decemb``'s own CLI (exit 2 with one line on a config error)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from decemb.errors import ConfigError
    from decemb.train.cli import add_train_parser, run_train

    parser = argparse.ArgumentParser(prog="python -m decemb.train")
    commands = parser.add_subparsers(dest="command")
    add_train_parser(commands)
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run_train(args)
    except ConfigError as error:
        print(f"decemb train: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("decemb train: interrupted (run the same command again to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
