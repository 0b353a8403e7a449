"""`mindupload`: one subcommand per workflow stage. Rules call these; so can a person, to debug one stage.

Options that come from the config arrive as one JSON argument, so a rule passes exactly its `params`
(and Snakemake reruns the rule exactly when they change). User errors print one line and exit 1; anything
else is a bug, reported by type and place only (its message may quote a chat) unless MINDUPLOAD_DEBUG is set.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from mindupload.errors import UserError

log = logging.getLogger("mindupload")


def cmd_parse(args: argparse.Namespace) -> None:
    from mindupload import table
    from mindupload.ingest import ingest
    from mindupload.sources import SourceSpec

    spec = json.loads(args.spec)
    lists = {key: tuple(spec[key]) for key in ("me", "exclude_contacts", "exclude_conversations") if key in spec}
    spec = SourceSpec(**{**spec, **lists, "path": Path(spec["path"])})
    messages, report = ingest(spec)
    table.write_atomic(messages, args.table)
    _write_json(report, args.report)
    log.info("%s: %d messages (%d own) in %d conversation(s)", spec.name, *_counts(report))
    if report["excluded_messages"]:
        log.info(
            "%s: excluded %d messages in %d whole conversation(s) and elsewhere",
            spec.name,
            report["excluded_messages"],
            report["excluded_conversations"],
        )


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

    redaction = load(args.redaction) if args.redaction else None
    text = render_stats([load(p) for p in args.sources], load(args.turns), load(args.segments), redaction)
    table.write_text_atomic(text, args.output)


def cmd_redact(args: argparse.Namespace) -> None:
    from mindupload import table
    from mindupload.redact import RedactOptions, redact_table, render_report

    redacted, report = redact_table(table.read(args.messages), RedactOptions.from_json(json.loads(args.options)))
    table.write_atomic(redacted, args.table)
    _write_json(report, args.report)
    table.write_text_atomic(render_report(report), args.markdown)
    changed = report["messages_changed"]
    log.info("redacted: %d of other people's messages and %d of yours changed", changed["other"], changed["own"])


def cmd_forget(args: argparse.Namespace) -> None:
    from mindupload.forget import KEPT, forget, forget_hub_copies, pushed_dataset_repos

    repos = pushed_dataset_repos(args.root, args.hub_dataset)
    removed = forget(args.root, kept=(*KEPT, *args.keep))
    cached = forget_hub_copies(repos)
    for path in [*removed, *cached]:
        print(f"removed {path}")
    print(
        f"forgot {len(removed) + len(cached)} derived file(s) and folder(s); kept your exports and the public "
        "base model. Copies you pushed (Hub repos, storage buckets) and wandb runs are not touched."
    )


def cmd_embedded_model(args: argparse.Namespace) -> None:
    from mindupload import embedded

    embedded.convert(args.output)


def cmd_config_docs(args: argparse.Namespace) -> None:
    from mindupload.config_docs import render

    sys.stdout.write(render())


def cmd_axolotl_config(args: argparse.Namespace) -> None:
    from mindupload import train_config

    cfg, device = _render_axolotl_config(args, args.output_dir, args.device)
    train_config.write(cfg, args.out)
    log.info("axolotl config for %s written to %s", train_config.resolve_device(device), args.out)


def _render_axolotl_config(args: argparse.Namespace, work_dir: str, device: str | None) -> tuple[dict, str]:
    """The axolotl config from the settings JSON and this machine's paths, validated by axolotl."""
    from mindupload import train_config

    config = train_config.sections(json.loads(args.config_json))
    device = device or config["training"]["device"]
    hub_dataset = None
    if args.hub_receipt:
        from mindupload import hub

        hub_dataset = hub.read_receipt(args.hub_receipt)
        hub.check_receipt_matches(hub_dataset, args.hub_receipt, args.train, args.validation)
    cfg = train_config.render(
        config,
        base_model=args.base_model,
        train_path=args.train,
        validation_path=args.validation,
        output_dir=work_dir,
        prepared_dir=args.prepared_dir,
        device=device,
        hub_dataset=hub_dataset,
    )
    train_config.validate(cfg, device)
    return cfg, device


def cmd_check(args: argparse.Namespace) -> None:
    from mindupload import check

    check.run(args.axolotl_config, args.train, args.validation, args.report_dir, hub_receipt=args.hub_receipt)


def cmd_train(args: argparse.Namespace) -> None:
    from mindupload import train, train_config

    cfg = None
    if args.config_json:
        needed = ("base_model", "train", "validation", "work_dir", "prepared_dir")
        missing = [f"--{name.replace('_', '-')}" for name in needed if not getattr(args, name)]
        if missing:
            raise UserError(f"train --config-json also needs {', '.join(missing)}.")
        # Rendered again here: the paths of this machine and the device it has (a config rendered on a laptop
        # names the laptop's paths and, with `device: auto`, its CPU settings).
        cfg, device = _render_axolotl_config(args, args.work_dir, None)
        log.info("axolotl config rendered for %s on this machine", train_config.resolve_device(device))
    train.run(args.axolotl_config, args.output_dir, cfg=cfg)


def cmd_sample(args: argparse.Namespace) -> None:
    from mindupload import sample
    from mindupload.render import Identity

    options = sample.Options(count=args.count, max_new_tokens=args.max_new_tokens, seed=args.seed)
    identity = Identity(**json.loads(args.identity))
    sample.run(args.base_model, args.adapter, identity, args.validation, args.out, options)


def cmd_upload(args: argparse.Namespace) -> None:
    from mindupload import hub

    settings = {**json.loads(args.settings), **hub.describe_base_model(args.base_model)}
    report = json.loads(Path(args.report).read_text(encoding="utf-8"))
    hub.push_dataset(args.repo, args.private == "true", args.train, args.validation, report, settings, args.receipt)


def cmd_push_adapter(args: argparse.Namespace) -> None:
    from mindupload import hub

    settings = {**json.loads(args.settings), **hub.describe_base_model(args.base_model)}
    hub.push_adapter(args.repo, args.private == "true", args.adapter, settings, args.receipt)


def cmd_install_profile(args: argparse.Namespace) -> None:
    from mindupload import profiles

    target = profiles.install(args.name, Path(args.source or f"profiles/{args.name}"), force=args.force)
    log.info("profile installed at %s: `snakemake --profile %s ...` now finds it from any folder", target, args.name)


def cmd_runpod_cleanup(args: argparse.Namespace) -> None:
    from snakemake_interface_common.exceptions import WorkflowError

    from snakemake_executor_plugin_runpod import api_key
    from snakemake_executor_plugin_runpod.api import RunPodClient, RunPodError
    from snakemake_executor_plugin_runpod.cleanup import cleanup

    try:
        cleanup(RunPodClient(api_key()), run=args.run, dry_run=args.dry_run)
    except (WorkflowError, RunPodError) as e:
        raise UserError(str(e)) from None


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
    p.add_argument("--redaction", help="the redaction report (JSON)")
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
    p.add_argument("--hub-receipt", help="results/hub/dataset.json: train from that Hub repo at that revision")
    p.add_argument("--out", required=True, help="the axolotl YAML to write")
    p.set_defaults(func=cmd_axolotl_config)

    p = sub.add_parser("check", help="axolotl preprocess + label/BOS/EOS/length checks -> report.html")
    p.add_argument("--axolotl-config", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--validation", required=True)
    p.add_argument("--report-dir", required=True, help="gets report.html and report.json")
    p.add_argument("--hub-receipt", help="the upload receipt, when the axolotl config reads the dataset from the Hub")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("train", help="axolotl train (resumes an interrupted run) -> adapter folder")
    p.add_argument("--axolotl-config", required=True)
    p.add_argument("--output-dir", required=True, help="the adapter folder, written only when training finished")
    here = p.add_argument_group("render the config again on this machine (where the job runs)")
    here.add_argument("--config-json", help="the config's `training` and `segments` as JSON (as axolotl-config)")
    here.add_argument("--base-model", help="model folder or hub id, as this machine sees it")
    here.add_argument("--train", help="train.jsonl")
    here.add_argument("--validation", help="validation.jsonl")
    here.add_argument("--work-dir", help="axolotl's output_dir: checkpoints of a run in progress")
    here.add_argument("--prepared-dir", help="where axolotl keeps tokenized datasets")
    here.add_argument("--hub-receipt", help="results/hub/dataset.json: train from that Hub repo at that revision")
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

    p = sub.add_parser("upload", help="train/validation + a dataset card -> a (private) Hub dataset repo; a receipt")
    _hub_arguments(p)
    p.add_argument("--train", required=True)
    p.add_argument("--validation", required=True)
    p.add_argument("--report", required=True, help="segments.json: counts for the card")
    p.set_defaults(func=cmd_upload)

    p = sub.add_parser("push-adapter", help="the adapter + a model card -> a (private) Hub model repo; a receipt")
    _hub_arguments(p)
    p.add_argument("--adapter", required=True, help="the adapter folder written by `train`")
    p.set_defaults(func=cmd_push_adapter)

    p = sub.add_parser("redact", help="messages -> messages with personal data and names replaced (+ report)")
    p.add_argument("--options", required=True, help="RedactOptions as JSON")
    p.add_argument("--messages", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--report", required=True, help="counts per type and side (JSON), never the replaced text")
    p.add_argument("--markdown", required=True, help="the same report as Markdown")
    p.set_defaults(func=cmd_redact)

    p = sub.add_parser("forget", help="delete all data derived from your chats (results/, logs/, .snakemake records)")
    p.add_argument("--root", default=".", help="the workflow's folder (default: here)")
    p.add_argument("--keep", nargs="*", default=[], help="paths under the root to keep as well (this run's log)")
    p.add_argument("--hub-dataset", default="", help="hub.dataset_repo: its copy in the Hugging Face cache goes too")
    p.set_defaults(func=cmd_forget)

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

    p = sub.add_parser("install-profile", help="copy profiles/<name> where `snakemake --profile <name>` finds it")
    p.add_argument("name", nargs="?", default="runpod", help="default: runpod")
    p.add_argument("--source", help="the profile folder (default: profiles/<name>)")
    p.add_argument("--force", action="store_true", help="replace an installed profile of that name")
    p.set_defaults(func=cmd_install_profile)

    p = sub.add_parser("runpod-cleanup", help="terminate RunPod pods left by runs of the RunPod executor")
    p.add_argument("--run", help="only pods of this run id (printed at the start of each run)")
    p.add_argument("--dry-run", action="store_true", help="list them, terminate nothing")
    p.set_defaults(func=cmd_runpod_cleanup)
    return parser


def _hub_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", required=True, help="`namespace/name`, or `name` in the token owner's namespace")
    p.add_argument("--private", choices=["true", "false"], default="true")
    p.add_argument("--settings", required=True, help="the settings the card describes, as JSON (no names, no text)")
    p.add_argument("--base-model", required=True, help="named on the card (a local folder by its name only)")
    p.add_argument("--receipt", required=True, help="JSON receipt: repo id, revision, file digests")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="mindupload: %(message)s", stream=sys.stderr)
    try:
        args.func(args)
    except UserError as e:
        print(f"mindupload: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        if os.environ.get("MINDUPLOAD_DEBUG"):
            raise
        print(internal_error(e), file=sys.stderr)
        return 2
    return 0


def internal_error(error: BaseException) -> str:
    """A bug report without the exception's message: a KeyError or a pandas error can quote a chat message,
    and Snakemake copies stderr into logs."""
    frames = traceback.extract_tb(error.__traceback__)
    return "\n".join(
        [
            f"mindupload: internal error: {type(error).__name__} (its message is not shown: it may quote your chats)",
            *(f"  at {frame.filename}:{frame.lineno} in {frame.name}" for frame in frames),
            "Please report it with the lines above; MINDUPLOAD_DEBUG=1 shows the full message (it may hold text).",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
