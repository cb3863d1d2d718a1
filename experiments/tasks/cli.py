# Command line of the arithmetic suite (python3 -m experiments.tasks.arith ...): writes split
# JSONL files, shows worked problems, and grades completions into the model card's eval JSON.
"""Usage (from the repository root, /usr/bin/python3 is enough):

  python3 -m experiments.tasks.arith write --split test --n 300 --out-dir tests/data/tasks
  python3 -m experiments.tasks.arith write --split validation --levels 3,4 --n 100 --out val.jsonl
  python3 -m experiments.tasks.arith show --level 4 --n 2
  python3 -m experiments.tasks.arith check --answer -272 --completion '...</think>\\boxed{-272}'
  python3 -m experiments.tasks.arith grade --tasks tests/data/tasks/arith_test_l*.jsonl \\
      --greedy greedy.jsonl --sampled sampled.jsonl --k 16 --note "ponder <sha>, T=0.8" \\
      --out eval.json

Completions files for `grade` are JSONL, one line per problem:
  {"id": "arith-test-l3-0007", "completions": ["<working>\\n</think>\\n\\n\\\\boxed{-272}", ...]}
("completion": "..." for one). The output is the JSON read by
tools/train_tiny_reasoner.py --card-only --eval-json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from experiments.tasks import arith, metrics


def _levels(text: str) -> list[int]:
    levels = [int(x) for x in text.split(",") if x.strip()]
    for lv in levels:
        if lv not in arith.LEVELS:
            raise argparse.ArgumentTypeError(
                f"unknown level {lv}; levels are {sorted(arith.LEVELS)}")
    return levels


def _cmd_write(args) -> int:
    if bool(args.out) == bool(args.out_dir):
        print("write: give exactly one of --out FILE and --out-dir DIR", file=sys.stderr)
        return 2
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        for lv in args.levels:
            path = os.path.join(args.out_dir, f"arith_{args.split}_l{lv}.jsonl")
            n = arith.write_jsonl(arith.split_records(args.split, lv, args.n, args.seed), path)
            print(f"{path}: {n} problems")
    else:
        records = [r for lv in args.levels
                   for r in arith.split_records(args.split, lv, args.n, args.seed)]
        n = arith.write_jsonl(records, args.out)
        print(f"{args.out}: {n} problems")
    return 0


def _cmd_show(args) -> int:
    for p in arith.make_split(args.split, args.level, args.n, args.seed):
        print(f"Q: {p.question}\n<think>\n{p.solution}\n</think>\n\n\\boxed{{{p.answer}}}\n")
    return 0


def _cmd_check(args) -> int:
    got = arith.extract_answer(args.completion)
    ok = arith.is_correct(args.completion, args.answer)
    print(json.dumps({"extracted": got, "correct": ok}))
    return 0 if ok else 1


def _read_completions(path: str) -> dict[str, list[str]]:
    return {line["id"]: metrics.completions_of(line) for line in arith.read_jsonl(path)}


def _cmd_grade(args) -> int:
    if not args.greedy and not args.sampled:
        print("grade: give --greedy FILE and/or --sampled FILE", file=sys.stderr)
        return 2
    records = [r for path in args.tasks for r in arith.read_jsonl(path)]
    levels: dict[str, dict] = {}
    if args.greedy:
        g = metrics.grade(records, _read_completions(args.greedy), arith.extract_answer,
                          arith.normalize_answer, k=1)
        for lv, m in g.items():
            levels.setdefault(lv, {})["n"] = m["n"]
            levels[lv]["greedy"] = m["pass@1"]
    if args.sampled:
        s = metrics.grade(records, _read_completions(args.sampled), arith.extract_answer,
                          arith.normalize_answer, k=args.k)
        for lv, m in s.items():
            entry = levels.setdefault(lv, {})
            entry.setdefault("n", m["n"])
            entry.update({key: v for key, v in m.items() if key != "n"})
    result = {"task": "arith", "note": args.note, "levels": levels}
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m experiments.tasks.arith",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    w = sub.add_parser("write", help="write a split as JSONL")
    w.add_argument("--split", choices=arith.SPLITS, default="test")
    w.add_argument("--levels", type=_levels, default=sorted(arith.LEVELS))
    w.add_argument("--n", type=int, default=300, help="problems per level")
    w.add_argument("--seed", type=int, default=arith.DEFAULT_SEED)
    w.add_argument("--out", help="one file with every level")
    w.add_argument("--out-dir", help="one file per level: arith_<split>_l<level>.jsonl")
    w.set_defaults(func=_cmd_write)

    s = sub.add_parser("show", help="print worked problems as the model is trained to write them")
    s.add_argument("--level", type=int, choices=sorted(arith.LEVELS), default=3)
    s.add_argument("--split", choices=arith.SPLITS, default="validation")
    s.add_argument("--n", type=int, default=3)
    s.add_argument("--seed", type=int, default=arith.DEFAULT_SEED)
    s.set_defaults(func=_cmd_show)

    c = sub.add_parser("check", help="grade one completion (exit status 0 when correct)")
    c.add_argument("--answer", required=True)
    c.add_argument("--completion", required=True)
    c.set_defaults(func=_cmd_check)

    g = sub.add_parser("grade", help="accuracy per level from completions JSONL")
    g.add_argument("--tasks", nargs="+", required=True, help="task JSONL files")
    g.add_argument("--greedy", help="completions JSONL of a greedy run (1 per problem)")
    g.add_argument("--sampled", help="completions JSONL of a sampled run (k or more per problem)")
    g.add_argument("--k", type=int, default=None, help="k of pass@k and maj@k (default: samples)")
    g.add_argument("--note", default="", help="how the completions were made (engine, settings)")
    g.add_argument("--out", help="write the JSON here too")
    g.set_defaults(func=_cmd_grade)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
