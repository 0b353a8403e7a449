"""`mindupload serve` (the chat page) and `mindupload api` (an OpenAI-compatible API): workflow/rules/serve.smk."""

from __future__ import annotations

import argparse
import json

from mindupload.errors import UserError


def _sections(args: argparse.Namespace):
    """(base model, identity, serve section, sequence_len) from the rule's arguments or the config file."""
    from mindupload import joboptions
    from mindupload.render import Identity

    if args.identity and args.settings:  # the serve/api rules: sections of the config Snakemake validated
        identity = Identity(**joboptions.read(args.identity, "--identity"))
        section, sequence_len, base_model = json.loads(args.settings), args.sequence_len, args.base_model
    else:
        from mindupload import config as configs

        config = configs.load(args.config)
        identity, section = Identity.from_config(config), config["serve"]
        sequence_len, base_model = config["segments"]["sequence_len"], args.base_model or config["base_model"]
    if not base_model:
        raise UserError(f"{args.command}: no base model; pass --base-model or set base_model in the config.")
    return base_model, identity, section, sequence_len


def cmd_serve(args: argparse.Namespace) -> None:
    from mindupload.serving import chat_ui

    base_model, identity, section, sequence_len = _sections(args)
    overrides = {"host": args.host, "port": args.port, "share": args.share or None}
    section = {**section, **{k: v for k, v in overrides.items() if v is not None}}
    chat_ui.serve(base_model, args.adapter, identity, chat_ui.ServeSettings.from_config(section), sequence_len)


def cmd_api(args: argparse.Namespace) -> None:
    import os

    from mindupload.serving import chat_ui, openai_api

    base_model, identity, section, sequence_len = _sections(args)
    section = {**section, "port": args.port or section.get("api_port", 8000), "share": False}
    if args.host:
        section["host"] = args.host
    settings = chat_ui.ServeSettings.from_config(section)
    openai_api.serve(base_model, args.adapter, identity, settings, sequence_len, os.environ)


def register(sub) -> None:
    p = sub.add_parser("serve", help="the chat page: write as the other person, the trained model answers as you")
    p.add_argument("--adapter", required=True, help="the LoRA adapter folder (results/adapter) or a merged model")
    p.add_argument("--config", default="config/config.yaml", help="identity, serve and base_model come from here")
    p.add_argument("--base-model", help="default: the config's base_model")
    p.add_argument("--identity", help="Identity as JSON or an env: reference (with --settings, not --config)")
    p.add_argument("--settings", help="the config's serve section as JSON (with --identity)")
    p.add_argument("--sequence-len", type=int, help="prompt + reply token limit (with --settings)")
    p.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: serve.port)")
    p.add_argument("--share", action="store_true", help="also make a public gradio.live link")
    p.set_defaults(func=cmd_serve, command="serve")

    p = sub.add_parser("api", help="an OpenAI-compatible API (/v1/chat/completions) over the trained model")
    p.add_argument("--adapter", required=True, help="the LoRA adapter folder (results/adapter) or a merged model")
    p.add_argument("--config", default="config/config.yaml", help="identity, serve and base_model come from here")
    p.add_argument("--base-model", help="default: the config's base_model")
    p.add_argument("--identity", help="Identity as JSON (with --settings, instead of --config)")
    p.add_argument("--settings", help="the config's serve section as JSON (with --identity)")
    p.add_argument("--sequence-len", type=int, help="prompt + reply token limit (with --settings)")
    p.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: serve.api_port)")
    p.set_defaults(func=cmd_api, command="api")
