"""Options a rule hands its job without writing them on the command line.

Snakemake prints a failed job's shell command, writes it to `.snakemake/log`, and records every job's command
and params in `.snakemake/metadata`. Options that hold names, privacy terms or the persona (the export's spec,
the redaction options, the identity) must reach none of these. So the workflow puts each such set of options
in its own process environment, which the jobs it starts inherit, under a name made of the options' digest
(`MINDUPLOAD_OPTIONS_<digest>`), and the rule passes only the reference `env:MINDUPLOAD_OPTIONS_<digest>`.
The reference is the rule's param: when an option changes, the digest does, and Snakemake reruns exactly the
rules that use it ("params changed"), showing two digests and no value.

A person running a command by hand passes the same options as JSON text instead.
"""

from __future__ import annotations

import hashlib
import json
import os

from mindupload.errors import UserError

PREFIX = "MINDUPLOAD_OPTIONS_"
REFERENCE = "env:"
# An environment string of more than 128 KiB cannot be passed to a new process on Linux (MAX_ARG_STRLEN).
LIMIT = 100_000


def hand_over(options: dict) -> str:
    """Put `options` in this process's environment for the jobs it starts; the reference to pass them by."""
    text = json.dumps(options, ensure_ascii=False, sort_keys=True)
    if len(text.encode()) > LIMIT:
        raise UserError(
            f"the options of one step are {len(text.encode()) // 1000} kB, over the {LIMIT // 1000} kB a job can be "
            "handed: shorten privacy.blocklist / allowlist, the contact lists or identity.system_prompt."
        )
    name = PREFIX + hashlib.sha256(text.encode()).hexdigest()[:32]
    os.environ[name] = text
    return REFERENCE + name


def read(value: str, option: str) -> dict:
    """The options given as JSON text, or by the reference `hand_over` returned (from the environment)."""
    if value.startswith(REFERENCE + PREFIX):
        name = value.removeprefix(REFERENCE)
        text = os.environ.get(name)
        if text is None:
            raise UserError(
                f"{option} {value}: not in this process's environment. The workflow hands these options to the jobs "
                "it starts; to run the command by hand, pass the options as JSON."
            )
        if PREFIX + hashlib.sha256(text.encode()).hexdigest()[:32] != name:
            raise UserError(f"{option} {value}: the environment variable does not hold the options it names.")
    else:
        text = value
    try:
        options = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{option}: not valid JSON (at character {e.pos}).") from None
    if not isinstance(options, dict):
        raise UserError(f"{option}: expected a JSON object.")
    return options
