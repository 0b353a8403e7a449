"""The format check's own parts, without running axolotl: reading, tokenizing as axolotl does, the layout,
BOS/EOS and length rules, packing and the report. Broken datasets fail here, before axolotl would start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tinymodel import with_split_special_tokens, write_dataset

from mindupload.errors import UserError
from mindupload.model import tokenizer
from mindupload.training import axolotl_config as train_config
from mindupload.training import check


def axolotl_config(model: Path, train: Path, validation: Path, tmp: Path, sequence_len: int = 256) -> Path:
    sections = train_config.sections({"segments": {"sequence_len": sequence_len}})
    cfg = train_config.render(
        sections,
        base_model=str(model),
        train_path=train,
        validation_path=validation,
        output_dir=tmp / "work",
        prepared_dir=tmp / "prepared",
        device="cpu",
    )
    train_config.write(cfg, tmp / "axolotl.yml")
    return tmp / "axolotl.yml"


def run_check(model: Path, tmp: Path, train_lines: list[dict] | None = None, **kwargs):
    train = write_dataset(tmp / "train.jsonl", 4)
    if train_lines is not None:
        train.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in train_lines))
    validation = write_dataset(tmp / "validation.jsonl", 1)
    cfg = axolotl_config(model, train, validation, tmp, **kwargs)
    return check.run(cfg, train, validation, tmp / "report")


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- reading and tokenizing


def test_a_dataset_that_lost_its_segments_names_the_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"segments": [{"label": False, "text": "a"}]}) + "\n" + json.dumps({"text": "x"}) + "\n")
    with pytest.raises(UserError, match=r"train.jsonl, line 2: no `segments` list.*snakemake dataset"):
        check.read_examples(path, "train")


def test_tokenize_labels_like_axolotls_input_output(tiny_tokenizer, tmp_path):
    (example,) = check.read_examples(write_dataset(tmp_path / "t.jsonl", 1), "train")
    (tok,) = check.tokenize([example], tiny_tokenizer)
    start = 0
    for (label, text), end in zip(example.pieces, tok.piece_ends, strict=True):
        ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tok.ids[start:end] == ids
        assert tok.labels[start:end] == (ids if label else [-100] * len(ids))
        start = end
    assert tok.ids[0] == tiny_tokenizer.bos_token_id and tok.ids[-1] == tiny_tokenizer.eos_token_id


# ---------------------------------------------------------------- broken datasets fail with the right message


def test_a_flipped_label_fails(tiny_llama_dir, tmp_path):
    broken = lines(write_dataset(tmp_path / "src.jsonl", 4))
    broken[2]["segments"][2]["label"] = True  # the friend's second turn, now "trained"
    with pytest.raises(UserError, match=r"train example 3: pieces 2 and 3 are both label:true"):
        run_check(tiny_llama_dir, tmp_path, broken)


def test_an_example_ending_in_context_fails(tiny_llama_dir, tmp_path):
    broken = lines(write_dataset(tmp_path / "src.jsonl", 4))
    broken[0]["segments"][-1]["label"] = False
    with pytest.raises(UserError, match=r"train example 1: ends with a label:false piece"):
        run_check(tiny_llama_dir, tmp_path, broken)


def test_an_over_length_example_fails(tiny_llama_dir, tmp_path):
    broken = lines(write_dataset(tmp_path / "src.jsonl", 4))
    broken[1]["segments"][0]["text"] += " climbing" * 300
    with pytest.raises(UserError, match=r"train example 2: \d+ tokens, above sequence_len 256"):
        run_check(tiny_llama_dir, tmp_path, broken)


def test_a_bos_that_splits_into_characters_fails(tiny_llama_dir, tmp_path):
    """The seed's hard-coded BOS on a tokenizer that does not know it (`<s>` on SmolLM2)."""
    broken = lines(write_dataset(tmp_path / "src.jsonl", 4, bos="<|im_start|>"))
    with pytest.raises(UserError, match=r"train example 1: does not start with the base model's BOS token '<s>'"):
        run_check(tiny_llama_dir, tmp_path, broken)


def test_a_tokenizer_whose_bos_text_splits_fails(tiny_llama_dir, tmp_path):
    model = with_split_special_tokens(tiny_llama_dir, tmp_path / "model")
    with pytest.raises(UserError, match=r"BOS text '<s>' tokenizes to 3 tokens .* instead of its single BOS token"):
        run_check(model, tmp_path)


def test_a_missing_eos_fails(tiny_llama_dir, tmp_path):
    broken = lines(write_dataset(tmp_path / "src.jsonl", 4))
    broken[3]["segments"][-1]["text"] = broken[3]["segments"][-1]["text"].removesuffix("</s>")
    with pytest.raises(UserError, match=r"train example 4: does not end with the base model's EOS token"):
        run_check(tiny_llama_dir, tmp_path, broken)


def test_errors_never_quote_message_text_and_the_report_is_written(tiny_llama_dir, tmp_path):
    broken = lines(write_dataset(tmp_path / "src.jsonl", 4))
    for example in broken:
        example["segments"][0]["label"] = True
    with pytest.raises(UserError) as caught:
        run_check(tiny_llama_dir, tmp_path, broken)
    message = str(caught.value)
    assert "4 problem(s)" in message or "problem(s)" in message
    assert not any(text in message for text in ("climbing", "derailleur", "how are you", "carrément"))
    report = json.loads((tmp_path / "report/report.json").read_text())
    assert report["ok"] is False and report["violations"]["kinds"]["layout"] >= 4
    assert (tmp_path / "report/report.html").is_file()


# ---------------------------------------------------------------- statistics and the report


def test_first_fit_decreasing_packing():
    assert check.pack([6, 5, 4, 3, 2], 10) == 2  # 6+4, 5+3+2
    assert check.packing([6, 5, 4, 3, 2], 10) == {"sequence_len": 10, "bins": 2, "efficiency": 1.0}
    assert check.packing([9, 9, 9], 10)["efficiency"] == 0.9
    assert check.packing([], 10)["bins"] == 0


def test_histogram_counts_every_example():
    rows = check.histogram([1, 15, 16, 100, 300], 256, buckets=16)
    assert sum(r["count"] for r in rows) == 5
    assert rows[0] == {"from": 0, "to": 15, "count": 2} and rows[-1]["from"] == 257


def test_the_report_escapes_text_and_marks_trained_tokens(tiny_tokenizer, tmp_path):
    example = check.Example("train", 1, ((False, "<s>friend: <script>x</script>"), (True, "\nElijah: hi</s>")))
    (tok,) = check.tokenize([example], tiny_tokenizer)
    html = check._tokens_html(example, tok, tiny_tokenizer)
    assert "<script>" not in html and "&lt;" in html
    assert 'class="t context special" title="id 0">&lt;s&gt;<' in html
    assert 'class="t trained special"' in html and "↵" in html


def test_specials_of_a_good_tokenizer(tiny_llama_dir):
    specials = check.check_specials(tokenizer.load(str(tiny_llama_dir)))
    assert (specials.bos, specials.bos_id, specials.eos, specials.eos_id) == ("<s>", 0, "</s>", 1)
