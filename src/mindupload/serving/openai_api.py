"""An OpenAI-compatible API over the clone: `/v1/models` and `/v1/chat/completions`, streamed (SSE) or not.

For clients that speak the OpenAI chat API (the `openai` package, Open WebUI, SillyTavern, bot frameworks). A
request's messages become the renderer's turns (`chat_template.messages_to_turns`: a first `system` message is
the persona, `user` messages the other person, named ones their own label, `assistant` messages you), the prompt
is fitted to the window and a reply ends exactly as on the chat page (`serving.generation`): at EOS, at a new
speaker line, at the token limit, or at one of the request's `stop` strings. Message text is never logged.

Why our own server rather than `transformers serve` (transformers 5.16): it loads a model by id or folder but no
LoRA adapter over a base model, has no API key, and ends replies at EOS and `stop` strings only, not at a new
speaker line; its prompt is the chat template's text tokenized whole, which gives other ids than training on
SentencePiece tokenizers unless the template carries our joiner. FastAPI and uvicorn come with Gradio already.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass

from starlette.requests import Request as HttpRequest  # module level: FastAPI resolves annotations here

from mindupload.chat_template import TemplateError, label, message_text, messages_to_turns
from mindupload.render import Identity
from mindupload.serving import generation

log = logging.getLogger(__name__)

KEY_ENV = "MINDUPLOAD_API_KEY"
MODEL_ID = "mindupload-clone"
MAX_STOPS = 4  # as OpenAI's API
MAX_LABEL_CHARS = 40  # as the chat page


class RequestError(ValueError):
    """A request the API answers with an OpenAI-shaped error (one line, never quoting message text)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None):
        super().__init__(message)
        self.param, self.status, self.code = param, status, code

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        if self.status == 401:
            kind = "authentication_error"
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Request:
    """A validated chat completion request."""

    messages: list[dict]
    options: generation.Options
    stops: list[str]
    seed: int | None
    stream: bool
    include_usage: bool


# ---------------------------------------------------------------- validating a request (pure)


def parse_request(body, defaults: generation.Options, model_id: str = MODEL_ID) -> Request:
    """The request body, checked field by field; RequestError names the field that is wrong."""
    if not isinstance(body, Mapping):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model")
    if model is not None and model != model_id:
        raise RequestError(
            f"model {model!r} does not exist; this server has {model_id!r}", "model", 404, "model_not_found"
        )
    n = body.get("n", 1)
    if n not in (1, None):
        raise RequestError("n: only one choice per request", "n")
    return Request(
        messages=_messages(body.get("messages")),
        options=generation.Options(
            max_new_tokens=_number(body, "max_completion_tokens", int, 1, None)
            or _number(body, "max_tokens", int, 1, None)
            or defaults.max_new_tokens,
            temperature=_or(_number(body, "temperature", float, 0, 2), defaults.temperature),
            top_p=_or(_number(body, "top_p", float, 0, 1), defaults.top_p),
        ),
        stops=_stops(body.get("stop")),
        seed=_number(body, "seed", int, None, None),
        stream=_flag(body, "stream"),
        include_usage=_flag(body.get("stream_options") or {}, "include_usage"),
    )


def _or(value, default):
    return default if value is None else value


def _number(body: Mapping, key: str, kind: type, low, high):
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise RequestError(f"{key}: expected {'an integer' if kind is int else 'a number'}", key)
    if (low is not None and value < low) or (high is not None and value > high) or (key == "top_p" and value == 0):
        raise RequestError(f"{key}: {value} is out of range [{low}, {high}]", key)
    return kind(value)


def _flag(body: Mapping, key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool | None):
        raise RequestError(f"{key}: expected true or false", key)
    return bool(value)


def _stops(value) -> list[str]:
    stops = [value] if isinstance(value, str) else value if value is not None else []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise RequestError("stop: expected a string or a list of strings", "stop")
    if len(stops) > MAX_STOPS:
        raise RequestError(f"stop: at most {MAX_STOPS} strings", "stop")
    return [s for s in stops if s]


def _messages(value) -> list[dict]:
    """The messages with clean text; empty ones left out, as the chat page leaves them out."""
    if not isinstance(value, list) or not value:
        raise RequestError("messages: expected a non-empty list of messages", "messages")
    out = []
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise RequestError(f"{where}: expected an object", where)
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant"):
            raise RequestError(f"{where}.role: {role!r} is not one of system, user, assistant", f"{where}.role")
        if role in ("system", "developer") and index != 0:
            raise RequestError(f"{where}: a system message may only come first", f"{where}.role")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise RequestError(f"{where}.content: expected a string or a list of content parts", f"{where}.content")
        text = generation.clean(message_text(content)).strip()
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise RequestError(f"{where}.name: expected a string", f"{where}.name")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": text})
        elif text:
            entry = {"role": role, "content": text}
            if role == "user" and name and label(generation.clean(name)):
                entry["name"] = label(generation.clean(name))[:MAX_LABEL_CHARS].strip()
            out.append(entry)
    if not any(m["role"] != "system" for m in out):
        raise RequestError("messages: no user or assistant message with text", "messages")
    return out


def visible_upto_stops(text: str, stops: list[str], *, final: bool) -> tuple[str, bool]:
    """`text` cut at the first of the request's `stop` strings; while streaming, an end that may still grow into
    one is held back. Returns (text, stopped)."""
    ends = [i for i in (text.find(s) for s in stops) if i >= 0]
    if ends:
        return text[: min(ends)].rstrip(), True
    if not final:
        for stop in stops:
            for size in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:size]):
                    text = text[:-size]
                    break
    return text, False


# ---------------------------------------------------------------- answering


@dataclass
class Clone:
    """The loaded model and what every request shares."""

    engine: generation.Engine
    identity: Identity
    defaults: generation.Options
    model_id: str = MODEL_ID

    def replies(self, request: Request) -> tuple[Iterator[str], dict, generation.Prepared]:
        """The cumulative visible reply (the request's stops applied), the token info, the prepared prompt."""
        identity, turns = messages_to_turns(request.messages, self.identity)
        ready = generation.prepare(self.engine, turns, identity, request.options)
        stops = [*ready.stops, *request.stops]
        info: dict = {}
        texts = generation.stream(self.engine, ready.pieces, stops, ready.options, request.seed, info)
        return _cut(texts, request.stops), info, ready

    def finish_reason(self, info: dict, ready: generation.Prepared) -> str:
        ids = info.get("ids", [])
        ended_early = len(ids) < ready.options.max_new_tokens or (ids and ids[-1] == self.engine.tokenizer.eos_token_id)
        if ended_early:
            return "stop"
        raw = self.engine.tokenizer.decode(ids, skip_special_tokens=True)
        return "stop" if generation.split_reply(raw, [*ready.stops], final=True)[1] else "length"

    def usage(self, info: dict, ready: generation.Prepared) -> dict:
        prompt = self.engine.count(ready.pieces)
        completion = len(info.get("ids", []))
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _cut(texts: Iterator[str], stops: list[str]) -> Iterator[str]:
    shown = text = ""
    with closing(texts):
        for text in texts:
            visible, stopped = visible_upto_stops(text, stops, final=False)
            if visible != shown:
                shown = visible
                yield shown
            if stopped:
                return
    visible, _ = visible_upto_stops(text, stops, final=True)
    if visible != shown:
        yield visible


def complete(clone: Clone, request: Request) -> dict:
    texts, info, ready = clone.replies(request)
    reply = next(reversed(list(texts)), "")
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": clone.model_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": clone.finish_reason(info, ready),
                "logprobs": None,
            }
        ],
        "usage": clone.usage(info, ready),
    }


def chunks(clone: Clone, request: Request) -> Iterator[str]:
    """Server-sent events of a streamed completion: a role delta, content deltas, the finish, `[DONE]`.
    The prompt is prepared (and generation started) before the first event."""
    texts, info, ready = clone.replies(request)
    return _events(clone, request, texts, info, ready)


def _events(clone: Clone, request: Request, texts, info: dict, ready) -> Iterator[str]:
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = clone.model_id

    def event(delta: dict, finish: str | None = None, **extra) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return f"data: {json.dumps({**base, 'choices': [choice], **extra}, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    sent = ""
    with closing(texts):
        for text in texts:
            if text.startswith(sent) and len(text) > len(sent):  # a revised start (rare) waits until it grows
                yield event({"content": text[len(sent) :]})
                sent = text
    yield event({}, clone.finish_reason(info, ready))
    if request.include_usage:
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': clone.usage(info, ready)})}\n\n"
    yield "data: [DONE]\n\n"


# ---------------------------------------------------------------- the app


def check_key(header: str | None, key: str | None) -> None:
    if not key:
        return
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
        raise RequestError(
            f"missing or wrong API key: send Authorization: Bearer <{KEY_ENV}>", None, 401, "invalid_api_key"
        )


def build(clone: Clone, key: str | None):
    """The FastAPI app (not started)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException

    app = FastAPI(title=f"AI model of {clone.identity.name}", docs_url=None, redoc_url=None, openapi_url=None)

    def error(e: RequestError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(RequestError)
    async def _request_error(_, e: RequestError):
        return error(e)

    @app.exception_handler(HTTPException)
    async def _http_error(_, e: HTTPException):
        return error(RequestError(f"{e.detail}", None, e.status_code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_, e: RequestValidationError):
        return error(RequestError("the request is not valid"))

    @app.get("/v1/models")
    def models(request: HttpRequest):
        check_key(request.headers.get("authorization"), key)
        model = {"id": clone.model_id, "object": "model", "created": 0, "owned_by": "mindupload"}
        return {"object": "list", "data": [model]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: HttpRequest):
        from starlette.concurrency import run_in_threadpool

        check_key(request.headers.get("authorization"), key)
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise RequestError("the request body is not JSON") from None
        parsed = parse_request(body, clone.defaults, clone.model_id)
        try:
            if parsed.stream:
                return StreamingResponse(chunks(clone, parsed), media_type="text/event-stream")
            return await run_in_threadpool(complete, clone, parsed)
        except TemplateError as e:
            raise RequestError(str(e), "messages") from None

    return app


def serve(base_model: str, model_dir: str, identity: Identity, settings, sequence_len: int | None, environ) -> None:
    """Check what can fail, load the model, then answer on settings.host:port until Ctrl-C."""
    import uvicorn

    from mindupload.serving.chat_ui import check_port, is_loopback

    key = environ.get(KEY_ENV) or None
    generation.check_model_folder(base_model, model_dir)
    check_port(settings.host, settings.port)
    if not key and not is_loopback(settings.host):
        log.warning("serving the API beyond this machine without a key: set %s", KEY_ENV)
    engine = generation.load(base_model, model_dir, sequence_len)
    defaults = generation.Options(settings.max_new_tokens, settings.temperature, settings.top_p)
    app = build(Clone(engine, identity, defaults), key)
    log.info(
        "OpenAI-compatible API on http://%s:%d/v1 (model %r; Ctrl-C stops)", settings.host, settings.port, MODEL_ID
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
