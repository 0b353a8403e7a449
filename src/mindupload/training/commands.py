"""`mindupload axolotl-config`, `check` and `train`: the training stage's commands (workflow/rules/check.smk,
train.smk)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from mindupload.errors import UserError

log = logging.getLogger("mindupload")


def cmd_axolotl_config(args: argparse.Namespace) -> None:
    from mindupload.training import axolotl_config

    cfg, device = _render_axolotl_config(args, args.output_dir, args.device)
    axolotl_config.write(cfg, args.out)
    log.info("axolotl config for %s written to %s", axolotl_config.resolve_device(device), args.out)


def _render_axolotl_config(args: argparse.Namespace, work_dir: str, device: str | None) -> tuple[dict, str]:
    """The axolotl config from the settings JSON and this machine's paths, validated by axolotl."""
    from mindupload.training import axolotl_config

    config = axolotl_config.sections(json.loads(args.config_json))
    device = device or config["training"]["device"]
    hub_dataset = None
    if args.hub_receipt:
        from mindupload import receipts

        hub_dataset = receipts.read_receipt(args.hub_receipt)
        receipts.check_receipt_matches(hub_dataset, args.hub_receipt, args.train, args.validation)
    cfg = axolotl_config.render(
        config,
        base_model=args.base_model,
        train_path=args.train,
        validation_path=args.validation,
        output_dir=work_dir,
        prepared_dir=args.prepared_dir,
        device=device,
        hub_dataset=hub_dataset,
    )
    axolotl_config.validate(cfg, device)
    return cfg, device


def cmd_check(args: argparse.Namespace) -> None:
    from mindupload.training import check

    check.run(args.axolotl_config, args.train, args.validation, args.report_dir, hub_receipt=args.hub_receipt)


def cmd_train(args: argparse.Namespace) -> None:
    from mindupload.training import axolotl_config, train

    cfg = None
    if args.config_json:
        needed = ("base_model", "train", "validation", "work_dir", "prepared_dir")
        missing = [f"--{name.replace('_', '-')}" for name in needed if not getattr(args, name)]
        if missing:
            raise UserError(f"train --config-json also needs {', '.join(missing)}.")
        # Rendered again here: the paths of this machine and the device it has (a config rendered on a laptop
        # names the laptop's paths and, with `device: auto`, its CPU settings).
        cfg, device = _render_axolotl_config(args, args.work_dir, None)
        log.info("axolotl config rendered for %s on this machine", axolotl_config.resolve_device(device))
    train.run(args.axolotl_config, args.output_dir, cfg=cfg, identity=_identity(args.identity))


def _identity(text: str | None):
    """The identity from JSON or an `env:` reference (the rules hand it over outside the command line)."""
    from mindupload import joboptions
    from mindupload.render import Identity

    return Identity(**joboptions.read(text, "--identity")) if text else None


def cmd_chat_template(args: argparse.Namespace) -> None:
    from mindupload.model.tokenizer import save_with_chat_template

    if not (Path(args.model_dir) / "config.json").is_file():
        raise UserError(f"{args.model_dir}: not a model folder (no config.json).")
    save_with_chat_template(args.tokenizer or args.model_dir, _identity(args.identity), args.model_dir)


def register(sub) -> None:
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
    p.add_argument("--identity", help="render.Identity as JSON: the adapter's tokenizer gets its chat template")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("chat-template", help="write the training layout's chat template into a model's tokenizer")
    p.add_argument("--model-dir", required=True, help="a merged model folder; its tokenizer files are rewritten")
    p.add_argument("--identity", required=True, help="render.Identity as JSON")
    p.add_argument("--tokenizer", help="where to read the tokenizer (default: the model folder)")
    p.set_defaults(func=cmd_chat_template)
