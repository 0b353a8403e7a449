"""The chat server on this machine: time to first token, tokens per second, and the server's memory.

Runs `mindupload serve` as a user does (the config's base model with an adapter), asks it a few questions
through gradio_client, and, with --screenshot, shows one reply in headless Chromium and saves the page.

    python benchmarks/bench_serve.py                      # results/adapter over the config's base model
    python benchmarks/bench_serve.py --adapter DIR --config my-config.yaml --screenshot /tmp/chat.png

Decoding speed is also measured in-process (the model alone, 64 new tokens, greedy, no early stop).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# The chat tests' helpers: the quiet environment, a free port, Debian's chromium and its offline flags.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serve"))
from serving import CHROMIUM, CHROMIUM_ARGS, QUIET_ENV, free_port

QUESTIONS = ["hey, how was your weekend?", "are you free on saturday?", "what are you up to?", "did you fix the bike?"]


def decode_speed(base_model: str, adapter: str, new_tokens: int = 64, runs: int = 3) -> tuple[float, float]:
    """(seconds to the first new token, new tokens per second after it), the model alone, medians."""
    import torch

    from mindupload import render
    from mindupload.render import Identity, Turn
    from mindupload.serving import generation

    engine = generation.load(base_model, adapter)
    identity = Identity(name="Elijah")
    pieces = render.prompt_pieces([Turn("friend", False, QUESTIONS[0])], identity, engine.markers)
    ids = torch.tensor([engine.encode(pieces)])
    common = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "do_sample": False}
    firsts, rates = [], []
    with torch.no_grad():
        engine.model.generate(**common, max_new_tokens=4)  # warm-up
        for _ in range(runs):
            start = time.perf_counter()
            engine.model.generate(**common, max_new_tokens=1)
            first = time.perf_counter() - start
            start = time.perf_counter()
            engine.model.generate(**common, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
            total = time.perf_counter() - start
            firsts.append(first)
            rates.append((new_tokens - 1) / max(total - first, 1e-9))
    return statistics.median(firsts), statistics.median(rates)


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default="results/adapter")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--base-model", help="default: the config's base_model")
    parser.add_argument("--screenshot", help="save the chat page after one reply here (PNG)")
    args = parser.parse_args()
    os.environ.update(QUIET_ENV)

    from mindupload import config as configs

    base_model = args.base_model or configs.load(args.config)["base_model"]
    first, rate = decode_speed(base_model, args.adapter)
    from mindupload.model import tokenizer as tokenizers

    tok = tokenizers.load(base_model)
    print(f"model alone: first token {first * 1000:.0f} ms, then {rate:.1f} tokens/s (greedy, 64 new tokens)")

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "mindupload", "serve", "--adapter", args.adapter, "--config", args.config]
    cmd += ["--port", str(port)] + (["--base-model", args.base_model] if args.base_model else [])
    start = time.perf_counter()
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            if server.poll() is not None:
                sys.exit(f"the server exited with {server.returncode}; run the command by hand: {' '.join(cmd)}")
            try:
                urllib.request.urlopen(url, timeout=5).close()
                break
            except OSError:
                time.sleep(0.5)
        print(f"server start (load + gradio): {time.perf_counter() - start:.1f} s; RSS {rss_mb(server.pid):.0f} MB")

        from gradio_client import Client

        client = Client(url, verbose=False, analytics_enabled=False)
        firsts, totals, lengths, rates = [], [], [], []
        for question in QUESTIONS:
            settings = ("CONTEXT: {me} is talking to a friend.", "friend", 0.7, 0.9, 64)
            start = time.perf_counter()
            job = client.submit(question, *settings, api_name="/chat")
            first = None
            for out in job:
                if out and first is None:
                    first = time.perf_counter() - start
            totals.append(time.perf_counter() - start)
            firsts.append(first if first is not None else totals[-1])
            reply = "\n".join(b["content"] for b in job.result())
            lengths.append(len(reply))
            tokens = len(tok(reply, add_special_tokens=False)["input_ids"])
            if tokens > 1 and totals[-1] > firsts[-1]:
                rates.append((tokens - 1) / (totals[-1] - firsts[-1]))
        client.close()
        print(
            f"through the chat API ({len(QUESTIONS)} turns of one conversation): first visible text after "
            f"{statistics.median(firsts) * 1000:.0f} ms (median), whole reply {statistics.median(totals):.2f} s, "
            f"{statistics.median(lengths)} characters (median), "
            f"{statistics.median(rates) if rates else float('nan'):.1f} tokens/s after the first (median)"
        )
        print(f"server RSS after the conversation: {rss_mb(server.pid):.0f} MB")
        if args.screenshot:
            screenshot(url, args.screenshot)
            print(f"screenshot: {args.screenshot}")
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(60)


def screenshot(url: str, path: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(url)
        for question in QUESTIONS[:2]:
            page.get_by_test_id("textbox").fill(question)
            page.get_by_test_id("submit-button").click()
            page.get_by_test_id("stop-button").wait_for(state="visible", timeout=60_000)
            page.get_by_test_id("stop-button").wait_for(state="detached", timeout=120_000)
        page.screenshot(path=str(Path(path)), full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
