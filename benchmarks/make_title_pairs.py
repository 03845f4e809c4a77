"""Write the SciFact corpus's (title -> abstract) pairs as JSONL, independently of the `scifact-titles` preset.

    python benchmarks/make_title_pairs.py --out runs/scifact-title-abstract.jsonl [--data-root ../shared/data]

Documents with an empty title or abstract are skipped; no query or qrel is read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import data_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    corpus = data_root(args.data_root) / "scifact" / "corpus.jsonl"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with corpus.open(encoding="utf-8") as source, args.out.open("w", encoding="utf-8") as out:
        for line in source:
            document = json.loads(line)
            title, abstract = document.get("title", "").strip(), document.get("text", "").strip()
            if title and abstract:
                out.write(json.dumps({"title": title, "abstract": abstract}) + "\n")
                written += 1
    print(f"{written} pairs -> {args.out}")


if __name__ == "__main__":
    main()
