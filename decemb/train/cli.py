"""``decemb train CONFIG.yaml --out DIR [--set key=value ...] [--threads N]``: the command-line side of training.

``add_train_parser(subparsers)`` adds the subcommand to decemb's argparse parser; ``run_train(args)`` runs it
and returns the exit status (0 on success). Config errors are raised as
:class:`decemb.errors.ConfigError` for the CLI to print as one line and exit 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from decemb.cli_args import add_threads_option

__all__ = ["add_train_parser", "run_train"]


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``train`` to an ``add_subparsers()`` object; returns the new parser."""
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a strategy (LoRA or full; contrastive, CoSENT/AnglE, SimCSE or MNTP) from a YAML config",
        description="Train the embedder CONFIG describes and write DIR/model (a saved decemb model, LoRA merged), "
        "DIR/metrics.json (evaluation before/after) and, with save_adapter, DIR/adapter. Work in progress lives "
        "in DIR.partial/; running the same command again resumes from its last checkpoint.",
    )
    parser.add_argument("config", metavar="CONFIG", help="training config (YAML)")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder (must not exist unless overwrite)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (dotted, repeatable; VALUE parsed as YAML), e.g. --set training.lr=1e-4",
    )
    add_threads_option(parser)
    return parser


def run_train(args: argparse.Namespace) -> int:
    """Run ``decemb train`` for parsed ``args``; returns 0 (a ``ConfigError`` propagates for the CLI to print)."""
    from decemb.threads import set_threads
    from decemb.train.parsing import load_train_config
    from decemb.train.run import train

    set_threads(getattr(args, "threads", None))
    config = load_train_config(args.config, args.overrides)
    train(config, args.out)
    return 0
