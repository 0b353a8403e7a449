"""`mindupload sample` and `mindupload evaluate`: the evaluation stage's commands (workflow/rules/evaluate.smk)."""

from __future__ import annotations

import argparse


def cmd_sample(args: argparse.Namespace) -> None:
    from mindupload.evaluation import sample

    options = sample.Options(count=args.count, max_new_tokens=args.max_new_tokens, seed=args.seed)
    sample.run(args.base_model, args.adapter, _identity(args.identity), args.validation, args.out, options)


def _identity(text: str):
    """The identity from JSON or the workflow's `env:` reference (handed over outside the command line)."""
    from mindupload import joboptions
    from mindupload.render import Identity

    return Identity(**joboptions.read(text, "--identity"))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from mindupload.evaluation import suite

    suite.run(
        args.base_model,
        args.adapter,
        _identity(args.identity),
        args.validation,
        args.inputs,
        args.out_json,
        args.out_html,
        suite.Options.from_json(args.options),
        sequence_len=args.sequence_len,
    )


def cmd_eval_inputs(args: argparse.Namespace) -> None:
    from mindupload.evaluation import suite

    options = suite.Options.from_json(args.options)
    suite.write_inputs(args.turns, _identity(args.identity), options, args.out)


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

    p = sub.add_parser("evaluate", help="base, prompted and tuned model on held-out conversations -> JSON + HTML")
    p.add_argument("--base-model", required=True)
    p.add_argument("--adapter", required=True, help="the adapter folder written by `train`")
    p.add_argument("--identity", required=True, help="Identity as JSON, or the workflow's env: reference")
    p.add_argument("--validation", required=True, help="validation.jsonl (loss, turn ends, ranking)")
    p.add_argument("--inputs", required=True, help="the file `eval-inputs` writes")
    p.add_argument("--options", default="{}", help="config `evaluation` as JSON")
    p.add_argument("--sequence-len", type=int, default=None, help="the window the model was trained with")
    p.add_argument("--out-json", required=True)
    p.add_argument("--out-html", required=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("eval-inputs", help="held-out contexts and training turns for `evaluate` -> JSON")
    p.add_argument("--turns", required=True, help="turns.parquet")
    p.add_argument("--identity", required=True, help="Identity as JSON, or the workflow's env: reference")
    p.add_argument("--options", default="{}", help="config `evaluation` as JSON")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_eval_inputs)
