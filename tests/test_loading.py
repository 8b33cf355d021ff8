"""The shared tokenizer loader: by directory, by tokenizer.json, by hub name offline; identity; fallback."""

from __future__ import annotations

import json
import shutil

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from conftest import PY_V2, RS_V1
from core.tokenizer import (FALLBACK_EOS, FALLBACK_PAD, TokenizerUnavailable, encode_batch, load_tokenizer,
                            recorded_backend, same_tokenizer, save_tokenizer, separator_id, tokenizer_identity,
                            train_fallback_tokenizer)

TEXT = PY_V2 + RS_V1


def test_load_by_directory(trained_tokenizer_dir):
    tok = load_tokenizer(str(trained_tokenizer_dir))
    reference = Tokenizer.from_file(str(trained_tokenizer_dir / "tokenizer.json"))
    assert tok.is_fast and len(tok) == reference.get_vocab_size() <= 600  # the sample repo is small
    assert encode_batch(tok, [TEXT, ""]) == [reference.encode(TEXT, add_special_tokens=False).ids, []]
    assert tok.decode(encode_batch(tok, [TEXT])[0]) == TEXT  # byte-level: lossless


def test_load_by_tokenizer_json_has_the_same_identity_as_the_directory(trained_tokenizer_dir):
    by_dir = load_tokenizer(str(trained_tokenizer_dir))
    by_file = load_tokenizer(str(trained_tokenizer_dir / "tokenizer.json"))
    a, b = tokenizer_identity(by_dir), tokenizer_identity(by_file)
    assert a["sha256"] == b["sha256"] and same_tokenizer(a, b)
    assert a["name_or_path"] != b["name_or_path"]
    assert separator_id(by_file) == separator_id(by_dir) == by_dir.convert_tokens_to_ids(FALLBACK_EOS)
    assert b["special_tokens"]["pad_token"] == {"token": FALLBACK_PAD, "id": 1}
    assert encode_batch(by_file, [TEXT]) == encode_batch(by_dir, [TEXT])


def test_identity_names_the_source_and_the_fallback(trained_tokenizer_dir):
    tok = load_tokenizer(str(trained_tokenizer_dir))
    identity = tokenizer_identity(tok, source="my/model", fallback=True)
    assert identity["name_or_path"] == "my/model" and identity["fallback"] is True
    assert identity["vocab_size"] == len(tok) and identity["separator_id"] == 0
    assert identity["special_tokens"]["eos_token"] == {"token": FALLBACK_EOS, "id": 0}


def test_unknown_hub_name_offline_is_unavailable_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(TokenizerUnavailable) as e:
        load_tokenizer("nobody/no-such-tokenizer")
    message = str(e.value)
    assert "\n" not in message and "'nobody/no-such-tokenizer'" in message
    assert "not reachable" in message and "HF_HOME" in message and "--model" in message


def test_missing_local_paths_and_bad_files(tmp_path):
    with pytest.raises(TokenizerUnavailable, match="no such file or directory"):
        load_tokenizer(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerUnavailable, match="no tokenizer saved"):
        load_tokenizer(str(tmp_path / "empty"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(TokenizerUnavailable, match="not a tokenizers JSON file"):
        load_tokenizer(str(tmp_path / "bad.json"))


def test_fallback_training_is_deterministic_and_loadable(tmp_path):
    texts = [PY_V2, RS_V1, "café crème\n", "<|endoftext|> stays one token"] * 3
    a = train_fallback_tokenizer(texts, tmp_path / "a", vocab_size=400)
    train_fallback_tokenizer(texts, tmp_path / "b", vocab_size=400)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
    train_fallback_tokenizer(texts, tmp_path / "a", vocab_size=400)  # over an existing directory
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()

    tok = AutoTokenizer.from_pretrained(str(tmp_path / "a"))
    assert tok.eos_token == FALLBACK_EOS and tok.pad_token == FALLBACK_PAD and len(tok) == 400
    assert tokenizer_identity(tok)["sha256"] == tokenizer_identity(a)["sha256"]
    ids = tok("café crème\n", add_special_tokens=False)["input_ids"]
    assert ids == encode_batch(a, ["café crème\n"])[0] and tok.decode(ids) == "café crème\n"
    assert encode_batch(a, ["<|endoftext|>"])[0] == [tok.eos_token_id]


def test_encode_batch_ignores_truncation_saved_with_the_tokenizer(trained_tokenizer_dir, tmp_path):
    config = json.loads((trained_tokenizer_dir / "tokenizer.json").read_text())
    config["truncation"] = {"direction": "Right", "max_length": 8, "strategy": "LongestFirst", "stride": 0}
    config["padding"] = {"strategy": {"Fixed": 64}, "direction": "Right", "pad_to_multiple_of": None,
                         "pad_id": 1, "pad_type_id": 0, "pad_token": FALLBACK_PAD}
    truncating = tmp_path / "truncating"
    truncating.mkdir()
    (truncating / "tokenizer.json").write_text(json.dumps(config))
    (truncating / "tokenizer_config.json").write_bytes((trained_tokenizer_dir / "tokenizer_config.json").read_bytes())
    assert len(Tokenizer.from_file(str(truncating / "tokenizer.json")).encode(TEXT).ids) == 64  # 8 + padding

    full = encode_batch(load_tokenizer(str(trained_tokenizer_dir)), [TEXT, "x"])
    assert len(full[0]) > 8
    assert encode_batch(load_tokenizer(str(truncating)), [TEXT, "x"]) == full
    assert encode_batch(load_tokenizer(str(truncating / "tokenizer.json")), [TEXT, "x"]) == full


def test_a_saved_plain_tokenizer_loads_as_autotokenizer_loads_it_without_torch(trained_tokenizer_dir, tmp_path):
    """A directory saved from a plain tokenizers-backed tokenizer (the fallback BPE) is loaded without
    AutoTokenizer, whose class lookup imports torch (about 2 s of every run that loads the tokenizer):
    the same class, identity, ids and saved files as AutoTokenizer's."""
    import subprocess
    import sys
    from pathlib import Path

    ours, auto = load_tokenizer(str(trained_tokenizer_dir)), AutoTokenizer.from_pretrained(str(trained_tokenizer_dir))
    assert type(ours) is type(auto)
    assert tokenizer_identity(ours) == tokenizer_identity(auto)
    assert encode_batch(ours, [TEXT]) == encode_batch(auto, [TEXT])
    ours.save_pretrained(tmp_path / "ours")
    auto.save_pretrained(tmp_path / "auto")
    assert {p.name: p.read_bytes() for p in (tmp_path / "ours").iterdir()} == \
        {p.name: p.read_bytes() for p in (tmp_path / "auto").iterdir()}
    root = Path(__file__).resolve().parent.parent
    code = (f"import sys; sys.path.insert(0, {str(root)!r}); from core.tokenizer import load_tokenizer; "
            f"load_tokenizer({str(trained_tokenizer_dir)!r}); print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_the_recorded_rust_tokenizer_is_read_only_where_it_is_the_identified_one(trained_tokenizer_dir, tmp_path):
    """`recorded_backend` gives the same ids as the loaded tokenizer from the directory or its tokenizer.json,
    None where the files hold another tokenizer; such a bare tokenizer is saved nowhere it is not already."""
    full = load_tokenizer(str(trained_tokenizer_dir))
    identity = tokenizer_identity(full)
    for spec in (trained_tokenizer_dir, trained_tokenizer_dir / "tokenizer.json"):
        backend = recorded_backend(spec, identity)
        assert encode_batch(backend, [TEXT, "x" * 600]) == encode_batch(full, [TEXT, "x" * 600])
    other = tmp_path / "other"
    train_fallback_tokenizer(["def f(x):\n    return x\n"] * 50, other, vocab_size=300)
    assert recorded_backend(other, identity) is None
    assert recorded_backend(tmp_path / "missing", identity) is None
    copy = tmp_path / "copy"
    shutil.copytree(trained_tokenizer_dir, copy)
    assert recorded_backend(copy, identity) is recorded_backend(copy / "tokenizer.json", identity)  # read once
    shutil.copy(other / "tokenizer.json", copy / "tokenizer.json")
    assert recorded_backend(copy, identity) is None  # its file changed: read again
    save_tokenizer(recorded_backend(trained_tokenizer_dir, identity), identity, trained_tokenizer_dir)  # already there
    with pytest.raises(ValueError, match="load it in full"):
        save_tokenizer(recorded_backend(trained_tokenizer_dir, identity), identity, other)
