"""Sample replies read their prompts back from validation examples with the labels the segmenter wrote."""

from __future__ import annotations

import json

from mindupload.evaluation.sample import prompts
from mindupload.render import Identity, Markers, Turn, pieces

ME = Identity(name="Elijah")
MARKERS = Markers(bos="<s>", eos="</s>")


def test_a_group_example_gives_back_each_speaker_with_their_own_label(tmp_path):
    turns = [Turn("friend", False, "hi all"), Turn("friend 2", False, "hey\nwhat's up"), Turn("Elijah", True, "yo")]
    example = {"segments": [piece.as_json() for piece in pieces(turns, ME, MARKERS)]}
    path = tmp_path / "validation.jsonl"
    path.write_text(json.dumps(example) + "\n")
    [prompt] = prompts(path, ME, MARKERS, 1)
    assert prompt.history == (Turn("friend", False, "hi all"), Turn("friend 2", False, "hey\nwhat's up"))
    assert prompt.actual == "yo"
