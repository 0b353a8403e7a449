from mindupload.render import Identity, Markers, Turn, example_json, pieces, prompt, stop_strings

ME = Identity(name="Elijah")
MARKERS = Markers(bos="<bos>", eos="<eos>")


def friend(text):
    return Turn("friend", False, text)


def me(text):
    return Turn("Elijah", True, text)


def test_renders_the_seed_layout():
    out = pieces([friend("hi"), me("hey"), friend("how are you"), me("good")], ME, MARKERS)
    assert [p.as_json() for p in out] == [
        {"label": False, "text": "<bos>CONTEXT: Elijah is talking to a friend.\nfriend: hi"},
        {"label": True, "text": "\nElijah: hey\n"},
        {"label": False, "text": "friend: how are you"},
        {"label": True, "text": "\nElijah: good<eos>"},
    ]


def test_consecutive_context_turns_are_one_piece_of_lines():
    out = pieces([Turn("Anna", False, "a"), Turn("Bob", False, "b\nc"), me("x")], ME, MARKERS)
    assert out[0].text.endswith("\nAnna: a\nBob: b\nc")
    assert len(out) == 2


def test_bos_and_eos_come_from_the_markers_not_hard_coded():
    out = pieces([friend("hi"), me("hey")], ME, Markers(bos="<|im_start|>", eos="<|im_end|>"))
    assert out[0].text.startswith("<|im_start|>CONTEXT")
    assert out[-1].text.endswith("hey<|im_end|>")
    assert "<s>" not in "".join(p.text for p in out)


def test_system_prompt_template_and_labels_are_configurable():
    ident = Identity(name="Eli", other_label="mate", system_prompt="{me} chats with a {other}.")
    out = pieces(
        [Turn(ident.speaker("Anna K", False), False, "yo"), Turn(ident.speaker("x", True), True, "hi")],
        ident,
        MARKERS,
    )
    assert out[0].text == "<bos>Eli chats with a mate.\nmate: yo"
    real = Identity(name="Eli", use_real_names=True)
    assert real.speaker("Anna K", False) == "Anna K"


def test_served_prompt_renders_exactly_like_the_training_example():
    turns = [friend("hi"), me("hey\nwhat's up"), friend("climbing tomorrow?")]
    reply = me("ok ok, carrément")
    training = "".join(p.text for p in pieces([*turns, reply], ME, MARKERS))
    served = prompt(turns, ME, MARKERS)
    assert training == served + " ok ok, carrément<eos>"


def test_stop_strings_are_the_start_of_another_persons_turn():
    assert stop_strings(ME) == ["\nElijah:", "\nfriend:"]
    assert stop_strings(ME, others=["Anna"]) == ["\nAnna:", "\nElijah:", "\nfriend:"]


def test_jsonl_lines_are_what_json_dumps_writes():
    import json

    out = pieces([friend('say "hi"\n\tthere 🙃 \u2028'), me("ok\\no")], ME, MARKERS)
    assert example_json(out) == json.dumps({"segments": [p.as_json() for p in out]}, ensure_ascii=False)
