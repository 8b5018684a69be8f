"""Text <-> token ids for one model, and its chat template.

Built on the `tokenizers` library, from either a GGUF file's metadata (byte-level BPE here,
SentencePiece in `engine/sentencepiece.py`) or a HuggingFace directory (`tokenizer.json`). Also
keeps a table of each token's raw bytes, which the streaming detokenizer concatenates instead of
re-decoding whole sequences.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as BackendTokenizer

from tokenmill.engine.sentencepiece import CONTROL as _CONTROL
from tokenmill.engine.sentencepiece import USER_DEFINED as _USER_DEFINED
from tokenmill.engine.sentencepiece import sentencepiece_backend


class ChatTemplateError(ValueError):
    """The model has no chat template, or the template refused these messages."""


# Token texts that end a turn in common chat formats; the same list llama.cpp uses to find
# end-of-generation tokens that the file does not name.
END_OF_TURN_TEXTS = frozenset({
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "_<EOT>", "<end_of_utterance>", "<｜end▁of▁sentence｜>",
})

_GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_TEKKEN_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_GPT4O_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# tokenizer.ggml.pre -> how llama.cpp's llama-vocab.cpp pre-tokenizes for it. "default" is what old
# files say; we read it as plain GPT-2, as transformers does.
@dataclass(frozen=True, slots=True)
class _PreTokenizer:
    split_digits: bool  # isolate every digit first (\p{N}), as the StarCoder family does
    regex: str
    ignore_merges: bool = False  # a word that is itself in the vocabulary is one token
    add_bos: bool = False  # llama.cpp's default when the file has no tokenizer.ggml.add_bos_token


_GGUF_PRE_TOKENIZERS: dict[str, _PreTokenizer] = {
    **{name: _PreTokenizer(False, _GPT2_SPLIT) for name in ("default", "gpt2", "mpt", "olmo", "jais")},
    **{name: _PreTokenizer(True, _GPT2_SPLIT) for name in (
        "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b")},
    **{name: _PreTokenizer(False, _LLAMA3_SPLIT, ignore_merges=True, add_bos=True) for name in (
        "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "dbrx", "smaug-bpe")},
    **{name: _PreTokenizer(False, _QWEN2_SPLIT) for name in (
        "qwen2", "stablelm2", "deepseek-r1-qwen", "megrez", "hunyuan")},
    "tekken": _PreTokenizer(False, _TEKKEN_SPLIT, ignore_merges=True, add_bos=True),
    "gpt-4o": _PreTokenizer(False, _GPT4O_SPLIT),
}


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable spelling of each byte, the alphabet of byte-level BPE vocabularies."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in byte_to_unicode().items()}


def _byte_level_bytes(token: str) -> bytes:
    # Same rule as the tokenizers ByteLevel decoder: a token spelled in the byte alphabet maps back
    # byte by byte; anything else (an added token with raw text) is its own UTF-8.
    table = _unicode_to_byte()
    try:
        return bytes(table[c] for c in token)
    except KeyError:
        return token.encode("utf-8")


def _sentencepiece_bytes(token: str, byte_fallback: bool) -> bytes:
    if byte_fallback and len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
        return bytes([int(token[3:5], 16)])
    return token.replace("\u2581", " ").encode("utf-8")


class _GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` (used by some templates to mark assistant text) renders its body."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.Scope(body, lineno=lineno)


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    # Jinja's own tojson escapes HTML characters, which templates do not expect.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def compile_chat_template(source: str) -> jinja2.Template:
    """Compile a chat template in the environment transformers renders them in."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(source)


def _flatten_content(message: dict) -> dict:
    content = message.get("content")
    if not isinstance(content, list):
        return message
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise ChatTemplateError(f"message content part of type {kind!r} is not supported; send text parts only")
        texts.append(part.get("text") or "")
    # Newline between parts, as vLLM does, so two parts never run together into one word.
    return {**message, "content": "\n".join(texts)}


class Tokenizer:
    """One model's tokenizer: encode, decode, per-token bytes and the chat template."""

    def __init__(
        self,
        backend: BackendTokenizer,
        *,
        bos_token_id: int | None,
        eos_token_ids: Sequence[int],
        add_bos: bool,
        chat_template: str | None,
        vocab_size: int | None = None,
        byte_level: bool = True,
        byte_fallback: bool = False,
        strips_leading_space: bool = False,
    ) -> None:
        self.backend = backend
        self.bos_token_id = bos_token_id
        self.eos_token_ids: list[int] = list(dict.fromkeys(eos_token_ids))
        self.add_bos = add_bos and bos_token_id is not None
        self.chat_template = chat_template
        # Ids the tokenizer knows; a model's embedding may have a few more rows (padding).
        self.vocab_size = vocab_size if vocab_size is not None else backend.get_vocab_size(with_added_tokens=True)
        # A sentencepiece decoder drops the space that starts a sequence; the detokenizer needs to know.
        self.strips_leading_space = strips_leading_space
        added = backend.get_added_tokens_decoder()
        self.special_token_ids: set[int] = {i for i, tok in added.items() if tok.special}
        self.id_to_bytes: list[bytes] = self._bytes_table(added, byte_level, byte_fallback)
        self._template: jinja2.Template | None = None

    def _bytes_table(self, added: dict[int, AddedToken], byte_level: bool, byte_fallback: bool) -> list[bytes]:
        size = max(self.vocab_size, self.backend.get_vocab_size(with_added_tokens=True))
        table = [b""] * size
        for token, i in self.backend.get_vocab(with_added_tokens=True).items():
            if i in added:
                table[i] = added[i].content.encode("utf-8")
            elif byte_level:
                table[i] = _byte_level_bytes(token)
            else:
                table[i] = _sentencepiece_bytes(token, byte_fallback)
        return table

    def token_text(self, token_id: int) -> str:
        """The vocabulary entry for `token_id`, as the tokenizer spells it (e.g. 'Ġthe')."""
        return self.backend.id_to_token(token_id) or ""

    def token_bytes(self, token_id: int) -> bytes:
        """The raw bytes this token stands for (special tokens: their text)."""
        return self.id_to_bytes[token_id] if 0 <= token_id < len(self.id_to_bytes) else b""

    def token_to_id(self, text: str) -> int | None:
        """The id of a vocabulary entry spelled exactly `text`, if there is one."""
        return self.backend.token_to_id(text)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids for `text`; special tokens written in the text are matched whole. BOS only if the model asks."""
        ids = self.backend.encode(text, add_special_tokens=False).ids
        if add_special_tokens and self.add_bos:
            return [self.bos_token_id, *ids]
        return ids

    def encode_batch(self, texts: Iterable[str], add_special_tokens: bool = True) -> list[list[int]]:
        encodings = self.backend.encode_batch(list(texts), add_special_tokens=False)
        prefix = [self.bos_token_id] if add_special_tokens and self.add_bos else []
        return [prefix + e.ids for e in encodings]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text for `ids`; bytes that do not form valid UTF-8 become U+FFFD."""
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    @property
    def bos_token(self) -> str | None:
        return None if self.bos_token_id is None else self.token_text(self.bos_token_id)

    @property
    def eos_token(self) -> str | None:
        return self.token_text(self.eos_token_ids[0]) if self.eos_token_ids else None

    def apply_chat_template(
        self,
        messages: list[dict],
        add_generation_prompt: bool = True,
        tools: list[dict] | None = None,
        **kwargs: Any,
    ) -> str:
        """Render a conversation to prompt text with the model's chat template, as transformers would."""
        if self.chat_template is None:
            raise ChatTemplateError(
                "this model has no chat template, so it cannot take chat messages; "
                "send a plain prompt to /v1/completions instead"
            )
        if self._template is None:
            try:
                self._template = compile_chat_template(self.chat_template)
            except jinja2.TemplateSyntaxError as e:
                raise ChatTemplateError(f"the model's chat template does not compile: {e}") from e
        variables = {"bos_token": self.bos_token or "", "eos_token": self.eos_token or "", **kwargs}
        messages = [_flatten_content(m) for m in messages]
        try:
            return self._template.render(
                messages=messages, tools=tools, add_generation_prompt=add_generation_prompt, **variables
            )
        except jinja2.TemplateError as e:  # raise_exception() in the template, or an undefined name
            raise ChatTemplateError(f"the chat template rejected these messages: {e}") from e
        except Exception as e:  # the template did arithmetic on what the messages gave it, e.g. None + str
            raise ChatTemplateError(f"the chat template could not render these messages ({type(e).__name__}: {e})") from e


def load_tokenizer(path: Path | str) -> Tokenizer:
    """The tokenizer of a GGUF file, or of a HuggingFace directory holding `tokenizer.json`."""
    path = Path(path)
    if path.is_dir():
        return _load_hf_dir(path)
    if path.suffix == ".gguf":
        return _load_gguf(path)
    raise ValueError(f"{path}: expected a .gguf file or a directory with tokenizer.json")


def _end_of_turn_ids(named: Iterable[int | None], special: dict[str, int]) -> list[int]:
    ids = [i for i in named if i is not None]
    ids += sorted(i for text, i in special.items() if text in END_OF_TURN_TEXTS)
    return list(dict.fromkeys(ids))


def _gguf_fields(path: Path) -> dict[str, Any]:
    from tokenmill.engine.gguf_file import read_gguf_file

    meta = read_gguf_file(path).metadata
    return {name: value for name, value in meta.items() if name.startswith("tokenizer.") or name == "general.architecture"}


def _load_gguf(path: Path) -> Tokenizer:
    meta = _gguf_fields(path)
    model = meta.get("tokenizer.ggml.model")
    if model == "gpt2":
        backend, default_add_bos = _byte_level_backend(path, meta)
    elif model == "llama":
        backend, default_add_bos = sentencepiece_backend(path.name, meta), True  # llama.cpp's default for these
    else:
        raise ValueError(
            f"{path.name}: tokenizer.ggml.model {model!r} is not supported from GGUF yet (byte-level BPE 'gpt2' and "
            "SentencePiece 'llama' are); point tokenmill at the model's HuggingFace directory (tokenizer.json) instead"
        )
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    token_types: list[int] = meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)

    def token_id(key: str) -> int | None:
        value = meta.get(f"tokenizer.ggml.{key}")
        return int(value) if value is not None and 0 <= int(value) < len(tokens) else None

    control = {t: i for i, (t, k) in enumerate(zip(tokens, token_types)) if k == _CONTROL}
    eos_ids = _end_of_turn_ids(
        [token_id("eos_token_id"), token_id("eot_token_id"), token_id("eom_token_id")], control
    )
    return Tokenizer(
        backend,
        bos_token_id=token_id("bos_token_id"),
        eos_token_ids=eos_ids,
        add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", default_add_bos)),
        chat_template=meta.get("tokenizer.chat_template"),
        vocab_size=len(tokens),
        byte_level=model == "gpt2",
        byte_fallback=model == "llama",
    )


def _byte_level_backend(path: Path, meta: dict[str, Any]) -> tuple[BackendTokenizer, bool]:
    """A byte-level BPE vocabulary with llama.cpp's pre-tokenizer for it, and whether BOS is added by default."""
    pre = meta.get("tokenizer.ggml.pre", "default")
    if pre not in _GGUF_PRE_TOKENIZERS:
        raise ValueError(
            f"{path.name}: pre-tokenizer {pre!r} is not supported; known: {sorted(_GGUF_PRE_TOKENIZERS)}"
        )
    pre_tokenizer = _GGUF_PRE_TOKENIZERS[pre]

    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    token_types: list[int] = meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    alphabet = set(byte_to_unicode().values())
    vocab: dict[str, int] = {}
    for i, (token, kind) in enumerate(zip(tokens, token_types)):
        # Added tokens keep their raw text so the added-token matcher finds them by id; ordinary
        # tokens must be spelled in the byte alphabet for the merges to reach them.
        if kind not in (_CONTROL, _USER_DEFINED) and not set(token) <= alphabet:
            token = "".join(byte_to_unicode()[b] for b in token.encode("utf-8"))
        vocab.setdefault(token, i)
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges", [])]

    backend = BackendTokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=pre_tokenizer.ignore_merges))
    steps: list[pre_tokenizers.PreTokenizer] = []
    if pre_tokenizer.split_digits:
        steps.append(pre_tokenizers.Digits(individual_digits=True))
    if pre_tokenizer.regex == _GPT2_SPLIT:  # ByteLevel's own regex is GPT-2's
        steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    else:
        steps.append(pre_tokenizers.Split(Regex(pre_tokenizer.regex), behavior="isolated"))
        steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False))
    backend.pre_tokenizer = steps[0] if len(steps) == 1 else pre_tokenizers.Sequence(steps)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([
        AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, token_types) if k == _CONTROL
    ])
    backend.add_tokens([
        AddedToken(t, special=False, normalized=False) for t, k in zip(tokens, token_types) if k == _USER_DEFINED
    ])
    return backend, pre_tokenizer.add_bos


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _token_content(value: Any) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def _decoder_kinds(decoder: dict | None) -> list[dict]:
    if not decoder:
        return []
    if decoder.get("type") == "Sequence":
        return [d for sub in decoder.get("decoders", []) for d in _decoder_kinds(sub)]
    return [decoder]


def _load_hf_dir(path: Path) -> Tokenizer:
    tokenizer_file = path / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ValueError(f"{path}: no tokenizer.json; tokenmill reads fast (tokenizers) tokenizers only")
    backend = BackendTokenizer.from_file(str(tokenizer_file))
    config = _read_json(path / "tokenizer_config.json")
    generation = _read_json(path / "generation_config.json")

    template_file = path / "chat_template.jinja"
    chat_template = config.get("chat_template")
    if template_file.is_file():
        chat_template = template_file.read_text(encoding="utf-8")
    elif isinstance(chat_template, list):  # older form: named templates
        named = {t.get("name"): t.get("template") for t in chat_template}
        chat_template = named.get("default") or next(iter(named.values()), None)

    def id_of(value: Any) -> int | None:
        text = _token_content(value)
        return backend.token_to_id(text) if text else None

    bos_id = id_of(config.get("bos_token"))
    if bos_id is None and isinstance(generation.get("bos_token_id"), int):
        bos_id = generation["bos_token_id"]
    gen_eos = generation.get("eos_token_id")
    gen_eos = gen_eos if isinstance(gen_eos, list) else [gen_eos]
    special = {tok.content: i for i, tok in backend.get_added_tokens_decoder().items() if tok.special}
    eos_ids = _end_of_turn_ids([id_of(config.get("eos_token")), *gen_eos], special)

    add_bos = config.get("add_bos_token")
    if add_bos is None:  # the post-processor in tokenizer.json decides, as in transformers
        add_bos = bos_id is not None and backend.encode("", add_special_tokens=True).ids[:1] == [bos_id]

    spec = json.loads(backend.to_str())
    kinds = _decoder_kinds(spec.get("decoder"))
    types = {d.get("type") for d in kinds}
    strips = any(d.get("type") == "Strip" and d.get("start", 0) > 0 for d in kinds) or any(
        d.get("type") == "Metaspace" and (d.get("prepend_scheme", "always") != "never" and d.get("add_prefix_space", True))
        for d in kinds
    )
    return Tokenizer(
        backend,
        bos_token_id=bos_id,
        eos_token_ids=eos_ids,
        add_bos=bool(add_bos),
        chat_template=chat_template,
        byte_level="ByteLevel" in types,
        byte_fallback="ByteFallback" in types,
        strips_leading_space=strips,
    )
