"""`mindupload`: one subcommand per workflow stage. Rules call these; so can a person, to debug one stage.

Options that come from the config arrive as one JSON argument, so a rule passes exactly its `params`
(and Snakemake reruns the rule exactly when they change). User errors print one line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from mindupload.errors import UserError

log = logging.getLogger("mindupload")


def cmd_parse(args: argparse.Namespace) -> None:
    from mindupload import table
    from mindupload.ingest import ingest
    from mindupload.sources import SourceSpec

    spec = json.loads(args.spec)
    spec = SourceSpec(**{**spec, "path": Path(spec["path"]), "me": tuple(spec["me"])})
    messages, report = ingest(spec)
    table.write_atomic(messages, args.table)
    _write_json(report, args.report)
    log.info("%s: %d messages (%d own) in %d conversation(s)", spec.name, *_counts(report))


def cmd_combine(args: argparse.Namespace) -> None:
    from mindupload import table

    combined = table.combine(args.tables)
    table.write_atomic(combined, args.table)
    log.info("combined %d tables: %d messages", len(args.tables), combined.num_rows)


def cmd_turns(args: argparse.Namespace) -> None:
    from mindupload import table
    from mindupload.turns import TurnOptions, build_turns

    turns, report = build_turns(table.read(args.messages), TurnOptions(**json.loads(args.options)))
    table.write_atomic(turns, args.table)
    _write_json(report, args.report)
    log.info("%d turns (%d own), %d for validation", report["turns"], report["own_turns"], report["validation_turns"])


def cmd_segment(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    from mindupload import tokenizer
    from mindupload.render import Identity
    from mindupload.segment import SegmentOptions, write_segments

    tok = tokenizer.load(args.base_model)
    report = write_segments(
        pq.read_table(args.turns),
        Identity(**json.loads(args.identity)),
        tokenizer.markers(tok),
        SegmentOptions(**json.loads(args.options)),
        tokenizer.counter(tok),
        {"train": args.train, "validation": args.validation},
    )
    _write_json(report, args.report)
    log.info("segments: %s; own-turn coverage %.1f%%", report["segments"], 100 * report["own_turn_coverage"])


def cmd_stats(args: argparse.Namespace) -> None:
    from mindupload import table
    from mindupload.stats import render_stats

    def load(path: str) -> dict:
        return json.loads(Path(path).read_text(encoding="utf-8"))

    text = render_stats([load(p) for p in args.sources], load(args.turns), load(args.segments))
    table.write_text_atomic(text, args.output)


def cmd_embedded_model(args: argparse.Namespace) -> None:
    from mindupload import embedded

    embedded.convert(args.output)


def cmd_config_docs(args: argparse.Namespace) -> None:
    from mindupload.config_docs import render

    sys.stdout.write(render())


def cmd_axolotl_config(args: argparse.Namespace) -> None:
    from mindupload import train_config

    config = train_config.sections(json.loads(args.config_json))
    device = args.device or config["training"]["device"]
    cfg = train_config.render(
        config,
        base_model=args.base_model,
        train_path=args.train,
        validation_path=args.validation,
        output_dir=args.output_dir,
        prepared_dir=args.prepared_dir,
        device=device,
    )
    train_config.validate(cfg, device)
    train_config.write(cfg, args.out)
    log.info("axolotl config for %s written to %s", train_config.resolve_device(device), args.out)


def cmd_check(args: argparse.Namespace) -> None:
    from mindupload import check

    check.run(args.axolotl_config, args.train, args.validation, args.report_dir)


def cmd_train(args: argparse.Namespace) -> None:
    from mindupload import train

    train.run(args.axolotl_config, args.output_dir)


def cmd_sample(args: argparse.Namespace) -> None:
    from mindupload import sample
    from mindupload.render import Identity

    options = sample.Options(count=args.count, max_new_tokens=args.max_new_tokens, seed=args.seed)
    identity = Identity(**json.loads(args.identity))
    sample.run(args.base_model, args.adapter, identity, args.validation, args.out, options)


def cmd_serve(args: argparse.Namespace) -> None:
    from mindupload import chat_ui
    from mindupload.render import Identity

    if args.identity and args.settings:  # the serve rule: sections of the config Snakemake validated
        identity = Identity(**json.loads(args.identity))
        section, sequence_len, base_model = json.loads(args.settings), args.sequence_len, args.base_model
    else:
        from mindupload import config as configs

        config = configs.load(args.config)
        identity, section = Identity.from_config(config), config["serve"]
        sequence_len, base_model = config["segments"]["sequence_len"], args.base_model or config["base_model"]
    if not base_model:
        raise UserError("serve: no base model; pass --base-model or set base_model in the config.")
    overrides = {"host": args.host, "port": args.port, "share": args.share or None}
    section = {**section, **{k: v for k, v in overrides.items() if v is not None}}
    chat_ui.serve(base_model, args.adapter, identity, chat_ui.ServeSettings.from_config(section), sequence_len)


def _write_json(data: dict, path: str) -> None:
    from mindupload import table

    table.write_text_atomic(json.dumps(data, indent=2, ensure_ascii=False) + "\n", path)


def _counts(report: dict) -> tuple[int, int, int]:
    return report["messages"], report["own_messages"], report["conversations"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mindupload", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("parse", help="one chat export -> normalized message table (Parquet)")
    p.add_argument("--spec", required=True, help="the source as JSON (SourceSpec fields)")
    p.add_argument("--table", required=True)
    p.add_argument("--report", required=True)
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("combine", help="per-export tables -> one table")
    p.add_argument("tables", nargs="+")
    p.add_argument("--table", required=True)
    p.set_defaults(func=cmd_combine)

    p = sub.add_parser("turns", help="messages -> turns, sessions and the train/validation split")
    p.add_argument("--options", required=True, help="TurnOptions as JSON")
    p.add_argument("--messages", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--report", required=True)
    p.set_defaults(func=cmd_turns)

    p = sub.add_parser("segment", help="turns -> axolotl input_output JSONL, fitted to sequence_len")
    p.add_argument("--options", required=True, help="SegmentOptions as JSON")
    p.add_argument("--identity", required=True, help="Identity as JSON")
    p.add_argument("--base-model", required=True)
    p.add_argument("--turns", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--validation", required=True)
    p.add_argument("--report", required=True)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("stats", help="stage reports -> a short human-readable stats file")
    p.add_argument("--sources", nargs="+", required=True, help="the parse reports")
    p.add_argument("--turns", required=True)
    p.add_argument("--segments", required=True)
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("embedded-model", help="convert the bundled SmolLM2-135M-Instruct GGUF to a model folder")
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_embedded_model)

    p = sub.add_parser("axolotl-config", help="config -> axolotl YAML, validated by axolotl on CPU")
    p.add_argument("--config-json", required=True, help="the config (at least `training` and `segments`) as JSON")
    p.add_argument("--base-model", required=True, help="model folder or hub id (folders are made absolute)")
    p.add_argument("--train", required=True, help="train.jsonl")
    p.add_argument("--validation", required=True, help="validation.jsonl")
    p.add_argument("--output-dir", required=True, help="axolotl's output_dir: checkpoints of a run in progress")
    p.add_argument("--prepared-dir", required=True, help="where axolotl keeps tokenized datasets")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: training.device")
    p.add_argument("--out", required=True, help="the axolotl YAML to write")
    p.set_defaults(func=cmd_axolotl_config)

    p = sub.add_parser("check", help="axolotl preprocess + label/BOS/EOS/length checks -> report.html")
    p.add_argument("--axolotl-config", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--validation", required=True)
    p.add_argument("--report-dir", required=True, help="gets report.html and report.json")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("train", help="axolotl train (resumes an interrupted run) -> adapter folder")
    p.add_argument("--axolotl-config", required=True)
    p.add_argument("--output-dir", required=True, help="the adapter folder, written only when training finished")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="a few sample replies from the trained adapter -> Markdown")
    p.add_argument("--base-model", required=True)
    p.add_argument("--adapter", required=True, help="the adapter folder written by `train`")
    p.add_argument("--identity", required=True, help="Identity as JSON")
    p.add_argument("--validation", required=True, help="validation.jsonl: prompts come from its contexts")
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=60)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("serve", help="the chat page: write as the other person, the trained model answers as you")
    p.add_argument("--adapter", required=True, help="the LoRA adapter folder (results/adapter) or a merged model")
    p.add_argument("--config", default="config/config.yaml", help="identity, serve and base_model come from here")
    p.add_argument("--base-model", help="default: the config's base_model")
    p.add_argument("--identity", help="Identity as JSON (with --settings, instead of --config)")
    p.add_argument("--settings", help="the config's serve section as JSON (with --identity)")
    p.add_argument("--sequence-len", type=int, help="prompt + reply token limit (with --settings)")
    p.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: serve.port)")
    p.add_argument("--share", action="store_true", help="also make a public gradio.live link")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("config-docs", help="print config/README.md, generated from the config schema")
    p.set_defaults(func=cmd_config_docs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="mindupload: %(message)s", stream=sys.stderr)
    try:
        args.func(args)
    except UserError as e:
        print(f"mindupload: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
