"""``python -m decemb.rerank train CONFIG --out DIR``: train a reranker by a recipe (``configs/train-reranker*.yaml``).

The recipe is checked before any model loads (one line naming a bad key, exit status 2). ``--max-steps`` and
``--queries`` override the recipe's, for a short smoke run of the same recipe.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from decemb.cli_args import add_threads_option, integer, positive_int


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m decemb.rerank", description=__doc__)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = actions.add_parser("train", help="train a reranker by a recipe YAML file")
    train.add_argument("config", metavar="CONFIG")
    train.add_argument("--out", required=True, metavar="DIR", help="output folder (model/, adapter/, recipe.json)")
    train.add_argument("--data-root", metavar="DIR", help="data folder (default: $DECEMB_DATA, else ../shared/data)")
    train.add_argument("--max-steps", type=integer, metavar="N", help="stop after N steps (overrides the recipe)")
    train.add_argument("--queries", type=positive_int, metavar="N", help="train queries sampled (overrides)")
    train.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    add_threads_option(train)
    args = parser.parse_args(argv)

    from decemb.cli_args import user_errors
    from decemb.rerank.recipe_config import read_recipe
    from decemb.threads import set_threads

    try:
        recipe = read_recipe(args.config)
        if args.max_steps is not None:
            recipe = recipe.model_copy(
                update={"training": recipe.training.model_copy(update={"max_steps": args.max_steps})}
            )
        if args.queries is not None:
            recipe = recipe.model_copy(update={"data": recipe.data.model_copy(update={"queries": args.queries})})
        set_threads(args.threads)
        from decemb.rerank.recipe import run_recipe

        result = run_recipe(recipe, args.out, data_root=args.data_root, show_progress=not args.quiet)
    except user_errors() as error:
        print(f"python -m decemb.rerank: error: {error}", file=sys.stderr)
        return 2
    summary = result.summary()
    print(
        f"decemb: trained {summary['steps']} steps in {summary['seconds']} s; model in {args.out}/model",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
