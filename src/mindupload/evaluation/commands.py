"""`mindupload sample`: the evaluation stage's command (workflow/rules/evaluate.smk)."""

from __future__ import annotations

import argparse


def cmd_sample(args: argparse.Namespace) -> None:
    from mindupload import joboptions
    from mindupload.evaluation import sample
    from mindupload.render import Identity

    options = sample.Options(count=args.count, max_new_tokens=args.max_new_tokens, seed=args.seed)
    identity = Identity(**joboptions.read(args.identity, "--identity"))
    sample.run(args.base_model, args.adapter, identity, args.validation, args.out, options)


def register(sub) -> None:
    p = sub.add_parser("sample", help="a few sample replies from the trained adapter -> Markdown")
    p.add_argument("--base-model", required=True)
    p.add_argument("--adapter", required=True, help="the adapter folder written by `train`")
    p.add_argument("--identity", required=True, help="Identity as JSON, or the workflow's env: reference")
    p.add_argument("--validation", required=True, help="validation.jsonl: prompts come from its contexts")
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=60)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_sample)
