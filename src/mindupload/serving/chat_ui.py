"""The chat page: you write as the other person, the clone answers as you, streamed, one bubble per message.

A Gradio `ChatInterface` over `mindupload.serving.generation`. The prompt is rendered from the whole conversation by
`render.prompt_pieces` (the training layout), trimmed to the model's window. Safe by default: it binds 127.0.0.1,
makes no public link, sends Gradio no analytics, and can ask for a username and password (the password only
from the environment). The page says plainly that the replies come from an AI model.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass

from mindupload.errors import UserError
from mindupload.render import Identity, Turn
from mindupload.serving import generation

log = logging.getLogger(__name__)

PASSWORD_ENV = "MINDUPLOAD_SERVE_PASSWORD"
MAX_LABEL_CHARS = 40  # a name, not a paragraph: it is repeated before every turn of the prompt


@dataclass(frozen=True)
class ServeSettings:
    """The `serve` section of the config (defaults live in the schema)."""

    host: str
    port: int
    share: bool
    temperature: float
    top_p: float
    max_new_tokens: int
    auth_username: str

    @classmethod
    def from_config(cls, section: Mapping) -> ServeSettings:
        return cls(**{f.name: section[f.name] for f in dataclasses.fields(cls)})


# ---------------------------------------------------------------- conversation <-> turns (pure)


def message_text(content) -> str:
    """The text of a Gradio message's content: a string, a list of parts, or a file (no text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text", "") if content.get("type", "text") == "text" else ""
    if isinstance(content, list | tuple):
        return "\n".join(t for t in (message_text(part) for part in content) if t)
    return ""


def history_turns(history: Sequence[Mapping], identity: Identity) -> list[Turn]:
    """Chat messages as turns: the clone's bubbles are the user's own turns, the person's messages the other's.
    Consecutive messages of one side merge with a newline, as `turns.merge_runs` merges them in training."""
    turns: list[Turn] = []
    for message in history:
        text = message_text(message.get("content", "")).strip()
        if not text:
            continue
        is_self = message.get("role") == "assistant"
        if turns and turns[-1].is_self == is_self:
            turns[-1] = turns[-1]._replace(text=f"{turns[-1].text}\n{text}")
        else:
            turns.append(Turn(identity.name if is_self else identity.other_label, is_self, text))
    return turns


def session_identity(identity: Identity, persona: str | None, other_label: str | None) -> Identity:
    """The configured identity with the page's persona text and other person's label.

    A label is one short line without a colon (it is written as `label: text`); a persona with stray braces is
    taken literally rather than failing as a format string (a long one is cut where the prompt is fitted).
    """
    label = " ".join(generation.clean(other_label or "").replace(":", " ").split())[:MAX_LABEL_CHARS].strip()
    label = label or identity.other_label
    persona = generation.clean(persona if persona is not None else identity.system_prompt)
    try:
        persona.format(me="", other="")
    except (KeyError, IndexError, ValueError):
        persona = persona.replace("{", "{{").replace("}", "}}")
    return dataclasses.replace(identity, other_label=label, system_prompt=persona)


def as_messages(reply: str) -> list[dict]:
    """One assistant bubble per line of the reply (control characters a model may write are not shown)."""
    return [{"role": "assistant", "content": line} for line in generation.bubbles(generation.clean(reply))]


# ---------------------------------------------------------------- the page


def respond_fn(engine: generation.Engine, identity: Identity):
    """The ChatInterface function: yields the clone's reply so far, as a list of bubbles."""

    def respond(message, history, persona, other_label, temperature, top_p, max_new_tokens) -> Iterator[list]:
        import gradio as gr

        text = generation.clean(message_text(message))
        if not text.strip():
            gr.Warning("Type a message first.")
            yield []
            return
        who = session_identity(identity, persona, other_label)
        turns = history_turns([*history, {"role": "user", "content": text}], who)
        wanted = generation.Options(int(max_new_tokens), float(temperature), float(top_p))
        ready = generation.prepare(engine, turns, who, wanted)
        if ready.trimmed_persona:
            gr.Warning("The persona is longer than half of the model's window: the model sees its start only.")
        if ready.trimmed_text:
            gr.Warning(f"Your message is longer than the model's window ({engine.context} tokens): it sees its end.")
        elif ready.turns_dropped:
            gr.Info(f"The model sees the latest turns only: {ready.turns_dropped} older ones no longer fit.")
        yield []
        answered = False
        with closing(generation.stream(engine, ready.pieces, ready.stops, ready.options)) as replies:
            for reply in replies:
                bubbles = as_messages(reply)
                answered = answered or bool(bubbles)
                yield bubbles
        if not answered:
            gr.Info("The model ended its turn without a word: send another message, or raise the temperature.")

    return respond


def disclosure(identity: Identity) -> str:
    return (
        f"**Replies on this page come from an AI model of {identity.name}**, a language model trained on "
        f"{identity.name}'s messages, not from {identity.name}. It can be wrong, make things up, and repeat "
        "private things it learnt. You write as the other person; the model answers as "
        f"{identity.name}."
    )


def build(engine: generation.Engine, identity: Identity, settings: ServeSettings):
    """The Gradio app (not launched)."""
    import gradio as gr

    _, most_new = engine.budget(engine.context)
    with gr.Blocks(title=f"AI model of {identity.name}", fill_height=True) as demo:
        gr.Markdown(f"## Chat with an AI model of {identity.name}\n{disclosure(identity)}")
        chatbot = gr.Chatbot(
            label=f"{identity.name} (AI model)",
            placeholder=f"Write a message as **{identity.other_label}**; an AI model answers as {identity.name}.",
            buttons=["copy", "copy_all"],  # no "share": it would post the chat to Hugging Face
            render=False,
            scale=1,
        )
        textbox = gr.Textbox(
            placeholder=f"Write as {identity.other_label}…",
            submit_btn=True,
            stop_btn=True,
            autofocus=True,
            render=False,
        )
        controls = [
            gr.Textbox(
                identity.system_prompt,
                label="Persona: the system prompt ({me} is your name, {other} the other person's label)",
                lines=2,
                render=False,
            ),
            gr.Textbox(identity.other_label, label="The other person's label", render=False),
            gr.Slider(0, 2, settings.temperature, step=0.05, label="Temperature (0: the likeliest word)", render=False),
            gr.Slider(0.05, 1, settings.top_p, step=0.05, label="Top-p", render=False),
            gr.Slider(
                1,
                most_new,
                min(settings.max_new_tokens, most_new),
                step=1,
                label="Max new tokens",
                render=False,
            ),
        ]
        chat = gr.ChatInterface(
            respond_fn(engine, identity),
            chatbot=chatbot,
            textbox=textbox,
            additional_inputs=controls,
            additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False),
            api_name="chat",
            concurrency_limit=1,  # one reply at a time; a second tab waits in Gradio's queue
            flagging_mode="never",
            fill_height=True,
        )
        reset = gr.Button("New conversation", variant="secondary", size="sm")
        reset.click(lambda: ([], []), None, [chat.chatbot, chat.chatbot_state], queue=False, api_visibility="private")
    return demo


# ---------------------------------------------------------------- serving


def credentials(settings: ServeSettings, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(username, password) when the page asks for a login; the password only ever from the environment."""
    password = environ.get(PASSWORD_ENV, "")
    if settings.auth_username and not password:
        raise UserError(f"serve.auth_username is set but {PASSWORD_ENV} is not: export the password in it.")
    if password and not settings.auth_username:
        raise UserError(f"{PASSWORD_ENV} is set but serve.auth_username is empty: set the username in the config.")
    return (settings.auth_username, password) if password else None


def check_port(host: str, port: int) -> None:
    """Fail before loading the model when something else listens there (as the server will: SO_REUSEADDR, so
    the closed connections of a previous run do not count)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            why = e.strerror or str(e)
            raise UserError(f"serve: cannot listen on {host}:{port} ({why}). Set serve.port or --port.") from None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(
    base_model: str, model_dir: str, identity: Identity, settings: ServeSettings, sequence_len: int | None
) -> None:
    """Check everything that can fail, load the model, then serve until Ctrl-C."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no telemetry, no version check
    login = credentials(settings, os.environ)
    generation.check_model_folder(base_model, model_dir)
    check_port(settings.host, settings.port)
    if not login and (settings.share or not is_loopback(settings.host)):
        log.warning("serving beyond this machine without a login: set serve.auth_username and %s", PASSWORD_ENV)
    engine = generation.load(base_model, model_dir, sequence_len)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up probes
    demo = build(engine, identity, settings)
    demo.queue(default_concurrency_limit=1)
    log.info("serving on http://%s:%d (Ctrl-C stops)", settings.host, settings.port)
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        auth=login,
        ssr_mode=False,
        mcp_server=False,
        inbrowser=False,
        show_error=False,
    )
