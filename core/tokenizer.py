"""Load a tokenizer by hub name, directory or tokenizer.json; its identity; the offline fallback.

    from core.tokenizer import load_tokenizer, tokenizer_identity, encode_batch

One home for what stages 2 and 3 and the trainer all need. A tokenizer is always a fast
(Rust-backed) transformers tokenizer, so text is encoded in batches by the Rust library.

When a hub name cannot be loaded (offline and not in the Hugging Face cache),
`TokenizerUnavailable` says so in one line with the fix, after at most a few seconds: the
network is probed once instead of letting the hub client retry for a minute.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import weakref
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlparse

from core.io import UserError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "microsoft/codebert-base"
FALLBACK_EOS = "<|endoftext|>"
FALLBACK_PAD = "<|pad|>"
FALLBACK_VOCAB_SIZE = 16384


class TokenizerUnavailable(UserError):
    """The requested tokenizer cannot be loaded here; the message says what to do."""


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_or_fall_back(spec: str, fallback: bool, trained_on: str,
                      stop: str = "--no-tokenizer-fallback to stop here"):
    """`load_tokenizer(spec)`, or None when it cannot be loaded and `fallback` allows training a
    byte-level BPE instead (said in one warning: what it is `trained_on`, how to `stop` instead);
    raises TokenizerUnavailable when it does not."""
    try:
        return load_tokenizer(spec)
    except TokenizerUnavailable as e:
        if not fallback:
            raise
        logger.warning("%s; using a byte-level BPE tokenizer trained on %s instead (%s)", e, trained_on, stop)
        return None


def tokenizer_source(spec: str) -> Path | None:
    """Where `load_tokenizer(spec)` reads from without the network: the file or directory `spec` names,
    else the hub name's folder in the local Hugging Face cache; None when neither is there.

    Cheap (no transformers import): a rerun fingerprints it to know that the tokenizer is the same.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return path
    from huggingface_hub.constants import HF_HUB_CACHE

    cached = Path(HF_HUB_CACHE) / ("models--" + spec.replace("/", "--"))
    return cached if cached.is_dir() else None


def load_tokenizer(spec: str):
    """Load a fast tokenizer from a local directory, a `tokenizer.json` file, or a hub name.

    A hub name is taken from the local Hugging Face cache when it is there, and downloaded
    otherwise. Raises TokenizerUnavailable (a UserError) with the fix when neither works.
    """
    from transformers import PreTrainedTokenizerFast

    path = Path(spec).expanduser()
    if path.is_file():
        try:
            tok = PreTrainedTokenizerFast(tokenizer_file=str(path))
        except Exception as e:  # the tokenizers library raises its own Exception subclass
            raise TokenizerUnavailable(f"{path}: not a tokenizers JSON file ({e})") from None
        _name_special_tokens(tok)
    elif path.is_dir():
        try:
            if _saved_class(path) in _PLAIN_CLASSES:  # as AutoTokenizer loads it, without importing torch
                tok = PreTrainedTokenizerFast.from_pretrained(str(path))
            else:
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(str(path), use_fast=True)
        except (OSError, ValueError) as e:
            raise TokenizerUnavailable(f"{path}: no tokenizer saved in this directory ({str(e).splitlines()[0]})") from None
    else:
        if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
            raise TokenizerUnavailable(f"{spec}: no such file or directory")
        tok = _load_from_hub(spec)
    if not getattr(tok, "is_fast", False):
        raise TokenizerUnavailable(f"{spec}: only fast (Rust) tokenizers are supported")
    return tok


# The class a plain tokenizers-backed tokenizer is saved as (`save_pretrained` of the fallback BPE, or of a
# tokenizer.json); transformers 5's `PreTrainedTokenizerFast` is that class. AutoTokenizer resolves the
# class through the model configuration machinery, which imports torch (about 2 s); for these it
# returns the same class, with the same files read.
_PLAIN_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")


def _saved_class(path: Path) -> str | None:
    """The `tokenizer_class` a saved tokenizer's `tokenizer_config.json` names, or None."""
    try:
        return json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8")).get("tokenizer_class")
    except (OSError, ValueError, AttributeError):
        return None


_EOS_NAMES = (FALLBACK_EOS, "</s>", "<eos>", "<|end_of_text|>")
_SEP_NAMES = ("[SEP]",)
_PAD_NAMES = (FALLBACK_PAD, "<pad>", "[PAD]")


def _name_special_tokens(tok) -> None:
    """A bare tokenizer.json has no tokenizer_config.json: name end-of-text, separator and padding
    from its special added tokens, so that `separator_id` and the identity work as for a directory."""
    special = {t.content for t in tok.added_tokens_decoder.values() if t.special}
    for attr, names in (("eos_token", _EOS_NAMES), ("sep_token", _SEP_NAMES), ("pad_token", _PAD_NAMES)):
        found = next((n for n in names if n in special), None)
        if getattr(tok, attr) is None and found is not None:
            setattr(tok, attr, found)


def _load_from_hub(name: str):
    """A hub name from the local cache, else downloaded. AutoTokenizer (it imports torch, about 2 s) is
    imported only when the name is in the cache or the hub answers: the offline fallback goes without."""
    if tokenizer_source(name) is not None:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(name, use_fast=True, local_files_only=True)
        except (OSError, ValueError):
            pass
    fix = ("give a local directory or tokenizer.json with --model, point HF_HOME at a cache that has it, "
           "or run once with network access to cache it")
    if not hub_reachable():
        raise TokenizerUnavailable(f"cannot load tokenizer '{name}': the Hugging Face hub is not reachable "
                                   f"and it is not in the local cache; {fix}")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, use_fast=True)
    except (OSError, ValueError) as e:
        raise TokenizerUnavailable(f"cannot load tokenizer '{name}': {str(e).splitlines()[0]}; {fix}") from None


def separator_id(tok) -> int:
    """The token put between chunks in a stream: end-of-text, else the separator token."""
    for tid in (tok.eos_token_id, tok.sep_token_id):
        if tid is not None:
            return int(tid)
    raise UserError(f"tokenizer '{tok.name_or_path}' has neither an end-of-text nor a separator token")


def tokenizer_identity(tok, source: str | None = None, fallback: bool = False) -> dict:
    """What must match between the data and a model: name, vocab size, special tokens, content hash.

    The hash is over the tokenizer's canonical JSON serialization, so the same tokenizer has the
    same hash whether it came from the hub cache, a directory or a file.
    """
    serialized = tok.backend_tokenizer.to_str()
    return {
        "name_or_path": source if source is not None else tok.name_or_path,
        "vocab_size": len(tok),
        "special_tokens": {name: {"token": str(t), "id": tok.convert_tokens_to_ids(str(t))}
                           for name, t in sorted(tok.special_tokens_map.items()) if isinstance(t, str)},
        "separator_id": separator_id(tok),
        "sha256": hashlib.sha256(serialized.encode("utf-8")).hexdigest(),
        "fallback": fallback,
    }


def same_tokenizer(a: dict, b: dict) -> bool:
    """Two identities describe the same token ids (names may differ: a hub name vs its saved copy)."""
    return a["sha256"] == b["sha256"] and a["vocab_size"] == b["vocab_size"]


def raw_backend(tok):
    """The Rust tokenizer with truncation and padding off (saved hub tokenizers often carry them)."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    return backend


def recorded_backend(spec: str | os.PathLike, identity: dict):
    """The Rust tokenizer that `identity` describes, read from `spec` (a saved directory or a tokenizer.json)
    by the tokenizers library alone, with truncation and padding off; None when `spec` holds no such
    file or holds another tokenizer.

    The identity's hash is over the serialized Rust tokenizer, so a file that serializes to the same
    hash encodes every text to the same ids as the tokenizer the identity was taken from: a rerun that
    only encodes (stages 2 and 3 with the tokenizer saved beside the data) does without transformers,
    whose import costs about 0.8 s.
    """
    from tokenizers import Tokenizer

    path = Path(spec).expanduser()
    file = path / "tokenizer.json" if path.is_dir() else path
    try:
        st = file.stat()
    except OSError:
        return None
    seen = (str(file.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, identity["sha256"])
    if seen in _RECORDED:  # read already by this process (stages 2 and 3 and the report read the same copy)
        return _RECORDED[seen]
    try:
        backend = Tokenizer.from_file(str(file))
    except Exception:  # not a tokenizers JSON file: the library raises its own Exception
        return None
    if hashlib.sha256(backend.to_str().encode("utf-8")).hexdigest() != identity["sha256"]:
        return None
    backend.no_truncation()
    backend.no_padding()
    if len(_RECORDED) >= 4:  # a process works with one tokenizer, from one or two copies
        _RECORDED.clear()
    _RECORDED[seen] = backend
    return backend


_RECORDED: dict[tuple, object] = {}  # (file, its stat data, identity hash) -> the Rust tokenizer read from it


def is_backend(tok) -> bool:
    """Whether `tok` is a bare Rust tokenizer (`recorded_backend`) rather than a transformers tokenizer."""
    from tokenizers import Tokenizer

    return isinstance(tok, Tokenizer)


_BACKENDS: dict[int, tuple] = {}  # id(tok) -> (weak reference to tok, its raw backend)


def encode_batch(tok, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, no special tokens added, encoded in one Rust batch call. `tok`: a
    transformers tokenizer, or a bare Rust one from `recorded_backend`."""
    if is_backend(tok):
        backend = tok
    else:
        ref, backend = _BACKENDS.get(id(tok), (None, None))
        if ref is None or ref() is not tok:  # an id is reused once its object is gone
            backend = raw_backend(tok)
            _BACKENDS[id(tok)] = (weakref.ref(tok), backend)
    return [e.ids for e in backend.encode_batch_fast(list(texts), add_special_tokens=False)]


def train_fallback_tokenizer(texts: Iterable[str], out_dir: str | os.PathLike,
                             vocab_size: int = FALLBACK_VOCAB_SIZE):
    """Train a byte-level BPE on `texts`, save it where `AutoTokenizer.from_pretrained` loads it.

    Used when the requested tokenizer cannot be had offline. Byte-level, so no text is ever an
    unknown token. Deterministic for the same texts in the same order.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[FALLBACK_EOS, FALLBACK_PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=FALLBACK_EOS, bos_token=FALLBACK_EOS,
                                  unk_token=FALLBACK_EOS, pad_token=FALLBACK_PAD)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    tok.save_pretrained(str(tmp))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return load_tokenizer(str(out_dir))


def save_tokenizer(tok, identity: dict, tok_dir: Path) -> None:
    """Save the tokenizer beside the data, unless the same one (same hash) is already there. `tok` may be
    a bare Rust tokenizer (`recorded_backend`) only when it is."""
    if recorded_backend(tok_dir, identity) is not None:
        return
    if is_backend(tok):
        raise ValueError(f"{tok_dir} does not hold the tokenizer {identity['name_or_path']}, and a bare Rust "
                         "tokenizer cannot be saved as transformers loads it: load it in full")
    if (tok_dir / "tokenizer.json").is_file():  # the same tokenizer as transformers reads the directory?
        try:
            if tokenizer_identity(load_tokenizer(str(tok_dir)))["sha256"] == identity["sha256"]:
                return
        except UserError:
            pass  # something else is there: replace it
    tmp = tok_dir.with_name(f".{tok_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tok.save_pretrained(str(tmp))
    shutil.rmtree(tok_dir, ignore_errors=True)
    os.replace(tmp, tok_dir)
