"""A SentencePiece BPE vocabulary from GGUF metadata (tokenizer.ggml.model == "llama"), as a `tokenizers` BPE.

Built the way transformers builds Gemma's tokenizer from the same file, so both give the same ids:
spaces become "▁" (no dummy prefix, no pre-split), characters outside the vocabulary fall back to
<0xXX> byte tokens, control tokens are special and user-defined ones (<div>, "\\n\\n") are matched
whole. The file stores no merges; they are recovered from the vocabulary: every split of a token into
two tokens is a merge, ranked by the token's priority.
"""

from __future__ import annotations

from typing import Any

from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as BackendTokenizer

SPACE = "\u2581"  # how SentencePiece spells a space
# GGUF token_type values (llama.cpp's llama_token_type).
CONTROL, USER_DEFINED = 3, 4


def _respell(token: str) -> str:
    # llama.cpp's converter writes user-defined runs of spaces ("▁▁") with real spaces; after the
    # normalizer text only has "▁", so they must be spelled that way for the merges to reach them.
    return SPACE * len(token) if token and not token.strip(" ") else token


def recover_merges(vocab: dict[str, int], priority: dict[str, float]) -> list[tuple[str, str]]:
    """Every (left, right) whose concatenation is a token: best merged token first, then longest left part."""
    ranked: list[tuple[float, int, int, str, str]] = []
    for token, score in priority.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in vocab and right in vocab:
                ranked.append((score, cut, len(right), left, right))
    ranked.sort(key=lambda m: m[:3], reverse=True)  # stable: full ties keep vocabulary order
    return [(m[3], m[4]) for m in ranked]


def sentencepiece_backend(name: str, meta: dict[str, Any]) -> BackendTokenizer:
    """The `tokenizers` tokenizer for a GGUF SentencePiece vocabulary without a dummy prefix (Gemma)."""
    if meta.get("tokenizer.ggml.add_space_prefix", True):
        raise ValueError(
            f"{name}: this SentencePiece vocabulary adds a space before the text (Llama 2, Mistral style), which "
            "tokenmill does not read from GGUF yet; point tokenmill at the model's HuggingFace directory instead"
        )
    raw: list[str] = meta["tokenizer.ggml.tokens"]
    token_types: list[int] = meta.get("tokenizer.ggml.token_type") or [1] * len(raw)
    tokens = [_respell(t) for t in raw]
    vocab = {token: i for i, token in enumerate(tokens)}
    if str(meta.get("general.architecture", "")).startswith("gemma"):
        # Gemma's scores do not follow its merge order; the order of the vocabulary does (as transformers reads it)
        priority = {token: -float(i) for i, token in enumerate(tokens)}
    else:
        priority = dict(zip(tokens, map(float, meta["tokenizer.ggml.scores"])))
    unk_id = meta.get("tokenizer.ggml.unknown_token_id")
    unk = raw[int(unk_id)] if unk_id is not None else None
    backend = BackendTokenizer(models.BPE(vocab=vocab, merges=recover_merges(vocab, priority), unk_token=unk,
                                          fuse_unk=True, byte_fallback=True))
    backend.normalizer = normalizers.Replace(" ", SPACE)
    # a no-op after the normalizer (no spaces are left), kept because Gemma's own tokenizer.json has it
    backend.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    backend.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()])
    backend.add_special_tokens([
        AddedToken(t, special=True, normalized=False) for t, k in zip(raw, token_types) if k == CONTROL
    ])
    backend.add_tokens([  # the respelled runs of spaces stay ordinary tokens, reached by merges
        AddedToken(t, special=False, normalized=False)
        for t, spelled, k in zip(raw, tokens, token_types) if k == USER_DEFINED and t == spelled
    ])
    return backend
