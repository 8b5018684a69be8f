"""Cheap lexical features of the last user turn, read next to its embedding.

Sentence embeddings blur surface form that tells scenarios apart: braces and `def` (code), digits and
operators (math), a quoted passage in another script after "译成" (translation), one emoji (chat).
Two blocks, about 1.3 ms for a 1,200-character turn on one core and a few tenths of a ms for a typical one:

* hashed character 1-3 grams of the lower-cased text, digits folded to "0" (works for Chinese,
  where one or two characters are a word, and for code symbols); log counts, L2-normalised;
* a few dozen cue counts and ratios (code syntax, math symbols, translation words, scripts, length).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

NGRAM_ORDERS = (1, 2, 3)
_MULTIPLIERS = np.asarray([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_DIGITS = re.compile(r"\d")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC, lower case, runs of whitespace as one space, every digit as "0"."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _DIGITS.sub("0", _SPACES.sub(" ", text)).strip()


def ngram_vector(text: str, buckets: int) -> np.ndarray:
    """Hashed character n-gram counts (orders 1-3) as log(1 + count), L2-normalised; stable across runs."""
    out = np.zeros(buckets, dtype=np.float32)
    codes = np.frombuffer(f" {normalise(text)} ".encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    hashes = []
    for order in NGRAM_ORDERS:
        if len(codes) < order:
            break
        h = np.full(len(codes) - order + 1, order, dtype=np.uint64)
        for k in range(order):
            h = h * _MULTIPLIERS[k] + codes[k:len(codes) - order + 1 + k]
        hashes.append(h)
    if not hashes:
        return out
    h = np.concatenate(hashes)
    h ^= h >> np.uint64(33)
    h *= _MIX
    h ^= h >> np.uint64(29)
    counts = np.bincount((h % np.uint64(buckets)).astype(np.int64), minlength=buckets)
    out[:] = np.log1p(counts)
    norm = float(np.linalg.norm(out))
    return out / norm if norm else out


_LANGUAGES = (r"english|french|spanish|german|japanese|korean|chinese|mandarin|cantonese|italian|russian|"
              r"portuguese|arabic|dutch|thai|vietnamese|hindi|turkish|polish|swedish|greek|latin|"
              r"indonesian|malay|hebrew|persian|ukrainian")
# matched against the lower-cased text (faster than re.I), except _IDENTIFIER, which needs the case
_CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(pattern, re.M)) for name, pattern in (
    ("code_fence", r"```|`[^`\n]+`"),
    ("braces", r"[{}]"),
    ("statement_end", r"[;{]\s*$|\)\s*;"),
    ("code_keyword", r"\b(?:def|return|import|class|function|const|let|var|public|static|void|lambda|async|await|"
                     r"elif|fn|func|struct|println|printf|console\.log|self|null|none|true|false)\b|#include|=>|->|::"),
    ("sql", r"\b(?:select|insert into|update|delete from|where|join|group by|order by|create table|having)\b"),
    ("shell", r"^\s*[$#>] |\b(?:sudo|git|npm|pip|docker|kubectl|brew|apt|curl|ssh|chmod|grep|awk|sed|bash|cd|ls)\s"),
    ("regex", r"\\[dwsbDWSB]|\[\^?[\w]-[\w]\]|\(\?[:=!<]|\.\*|\.\+|\$/|正则|regex|regexp"),
    ("error_text", r"error|exception|traceback|报错|warning|failed|undefined|segfault|stack trace|exit code"),
    ("file_name", r"\.(?:py|js|ts|tsx|go|rs|java|cpp|c|h|rb|php|sh|ya?ml|json|sql|html|css|toml|ini|csv|xlsx)\b"),
    ("code_words", r"\b(?:code|script|function|bug|compile|debug|api|query|python|java|javascript|sql|excel|"
                   r"formula|regex|bash|shell|docker|git)\b|代码|脚本|函数|编译|调试|接口|公式|报错"),
    ("math_symbols", r"[=+×÷√∑∫π∞≤≥≠±²³^%]|\d\s*[-*/]\s*\d"),
    ("math_words", r"\b(?:solve|equation|integral|derivative|probability|prove|proof|calculate|compute|how many|"
                   r"how much|percent|average|mean|median|ratio|area|volume|sum|limit|matrix|theorem)\b|"
                   r"求|解|方程|计算|概率|证明|多少|几|面积|体积|积分|导数|平均|百分之|比例|函数|定理|等于"),
    ("translate_words", r"\btranslat\w*|\bhow (?:do|would|can) (?:you|i|we) say\b|\bin(?:to)? (?:" + _LANGUAGES
                        + r")\b|\bmean in\b|"
                        r"翻译|翻成|译成|译为|翻一下|翻下|怎么说|什么意思|英文|英语|中文|日语|日文|韩语|法语|德语|"
                        r"西班牙语|俄语|文言文|白话"),
    ("language_names", r"\b(?:" + _LANGUAGES + r")\b"),
    ("quote", r"[\"“”「」『』‘’:：]"),
    ("chat_words", r"\b(?:hi|hello|hey|thanks|thank you|thx|lol|haha|bye|good night|good morning|sad|happy|"
                   r"tired|lonely|miss|love|feel|feeling|bored)\b|哈哈|嘿|你好|谢谢|晚安|早安|再见|拜拜|难过|"
                   r"开心|累|孤单|无聊|想你|心情|嗯|呢|吧|啊|呀|～|~"),
    ("advice_words", r"\b(?:should i|how (?:can|do|should) i|tips|advice|recommend|best way|plan|help me write|"
                     r"write an?|email|essay|summar\w+)\b|怎么办|建议|推荐|应该|如何|攻略|写一[篇封段首个]|总结|"
                     r"邮件|文案"),
    ("edit_words", r"\b(?:rewrite|rephrase|paraphrase|proofread|polish|grammar|tighten|shorten|reword|more formal|"
                   r"less formal|friendlier|wordy|typos?|punctuat\w*|without translating|same language)\b|改写|润色|"
                   r"修改|病句|语法|错别字|精简|通顺|改得|扩写|缩写|标点|措辞|改一下|仿写"),
    ("question", r"[?？]"),
    ("exclaim", r"[!！]"),
    ("newline", r"\n"),
))
_IDENTIFIER = re.compile(r"\b[a-z]+_[a-z0-9_]+\b|\b[a-z]+[A-Z][a-zA-Z]+\b|\w+\.\w+\(|\w\(\)")
_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(pattern)) for name, pattern in (
    ("cjk", r"[\u4e00-\u9fff\u3400-\u4dbf]"),
    ("latin", r"[A-Za-z]"),
    ("digit", r"\d"),
    ("kana", r"[\u3040-\u30ff]"),
    ("hangul", r"[\uac00-\ud7af\u1100-\u11ff]"),
    ("cyrillic", r"[\u0400-\u04ff]"),
    # Hebrew, Arabic, Thai, Devanagari, Greek
    ("other_script", r"[\u0590-\u08ff\u0e00-\u0e7f\u0900-\u097f\u0370-\u03ff]"),
    ("accented", r"[À-ÖØ-öø-ÿŁłŒœŠšŽž]"),
    ("punctuation", r"[^\w\s]"),
    ("emoji", r"[\U0001F000-\U0001FAFF\u2600-\u27BF]"),
))
_LENGTHS = (4, 12, 30, 80, 200)  # character-count buckets: one-hot, the last one open-ended
CUE_NAMES = ([f"count_{n}" for n, _ in _CUES] + ["count_identifier"] + [f"ratio_{n}" for n, _ in _SCRIPTS]
             + [f"chars<={n}" for n in _LENGTHS] + [f"chars>{_LENGTHS[-1]}", "log_chars", "has_context"])


def cue_vector(text: str, has_context: bool) -> np.ndarray:
    """Counts (as log 1+n) of code, math, translation and chat cues, script ratios and the length bucket."""
    chars = max(len(text), 1)
    lower = text.lower()
    counts = [np.log1p(len(pattern.findall(lower))) for _, pattern in _CUES]
    counts.append(np.log1p(len(_IDENTIFIER.findall(text))))
    ratios = [len(pattern.findall(text)) / chars for _, pattern in _SCRIPTS]
    bucket = next((i for i, limit in enumerate(_LENGTHS) if len(text) <= limit), len(_LENGTHS))
    lengths = [1.0 if i == bucket else 0.0 for i in range(len(_LENGTHS) + 1)]
    return np.asarray(counts + ratios + lengths + [np.log1p(len(text)) / 7, float(has_context)], dtype=np.float32)
