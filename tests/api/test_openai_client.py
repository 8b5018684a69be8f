"""The official openai client against a real server: plain, streaming, usage, stop, logprobs, seeds."""

from __future__ import annotations

import uuid

import openai

QUESTION = [{"role": "user", "content": "Hi, what is 2+2?"}]
STORY = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]


def stream_chat(client: openai.OpenAI, **kwargs) -> tuple[str, str | None, list, openai.types.CompletionUsage | None]:
    """Stream a chat completion; return the joined text, the finish reason, the logprob entries and the usage."""
    text, finish, logprobs, usage = [], None, [], None
    for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs):
        if chunk.usage is not None:
            assert chunk.choices == []
            usage = chunk.usage
            continue
        choice = chunk.choices[0]
        text.append(choice.delta.content or "")
        finish = choice.finish_reason or finish
        if choice.logprobs is not None:
            logprobs.extend(choice.logprobs.content)
    return "".join(text), finish, logprobs, usage


def warm(client: openai.OpenAI, model: str, *, messages: list[dict] | None = None, prompt: str | None = None) -> None:
    """Put this prompt's blocks in the prefix cache, so the requests compared next all start from the same cached prefix.

    Whether a cache hit changes the output is tested on its own (test_repeated_greedy_request_gives_the_same_text);
    here it would blur what a failure means.
    """
    if messages is not None:
        client.chat.completions.create(model=model, messages=messages, max_tokens=1)
    else:
        client.completions.create(model=model, prompt=prompt, max_tokens=1)


def test_chat_completion(client, model, chat_tokens):
    r = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=16, temperature=0)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == model
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert "4" in choice.message.content
    assert choice.finish_reason == "stop"  # the model ends its answer well before 16 tokens
    assert r.usage.prompt_tokens == chat_tokens(QUESTION)
    assert 0 < r.usage.completion_tokens < 16
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_stream_equals_non_stream(client, model):
    warm(client, model, messages=STORY)
    full = client.chat.completions.create(model=model, messages=STORY, max_tokens=24, temperature=0)
    text, finish, _, usage = stream_chat(client, model=model, messages=STORY, max_tokens=24, temperature=0)
    assert text == full.choices[0].message.content
    assert finish == full.choices[0].finish_reason == "length"
    assert (usage.prompt_tokens, usage.completion_tokens) == (full.usage.prompt_tokens, 24)


def test_streamed_chinese_and_emoji_equal_the_full_text(client, model):
    for prompt in ("长城是中国古代的", "Emoji list: 🍎 🍌 🍇 🍓 🍒"):
        warm(client, model, prompt=prompt)
        full = client.completions.create(model=model, prompt=prompt, max_tokens=24, temperature=0).choices[0].text
        parts = [c.choices[0].text for c in client.completions.create(model=model, prompt=prompt, max_tokens=24,
                                                                        temperature=0, stream=True)]
        assert "".join(parts) == full
        assert any(ord(ch) > 0x2E80 for ch in full)  # the model did answer in CJK / emoji
        # a character split across tokens is never sent half-done (only a cut at max_tokens may leave one)
        assert "\ufffd" not in full.rstrip("\ufffd") and not any("\ufffd" in p for p in parts[:-1])


def test_stream_chunks_are_openai_shaped(client, model):
    chunks = list(client.chat.completions.create(model=model, messages=QUESTION, max_tokens=4, temperature=0, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "length"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert all(c.usage is None for c in chunks)  # usage only when stream_options asks for it


def test_usage_counts_every_streamed_token(client, model, chat_tokens):
    text, finish, logprobs, usage = stream_chat(client, model=model, messages=STORY, max_tokens=20, temperature=0,
                                                logprobs=True, extra_body={"ignore_eos": True})
    assert finish == "length"
    assert usage.completion_tokens == len(logprobs) == 20
    assert usage.prompt_tokens == chat_tokens(STORY)
    assert usage.total_tokens == usage.prompt_tokens + 20


def test_second_identical_long_prompt_is_served_from_the_prefix_cache(client, model):
    # unique text first, so no earlier test has cached any block of it
    prompt = f"[{uuid.uuid4().hex}] " + "The lighthouse keeper climbed the stairs every evening to light the lamp. " * 4
    first = client.completions.create(model=model, prompt=prompt, max_tokens=2, temperature=0)
    second = client.completions.create(model=model, prompt=prompt, max_tokens=2, temperature=0)
    assert first.usage.prompt_tokens == second.usage.prompt_tokens >= 32
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert 32 <= cached < second.usage.prompt_tokens


def test_repeated_greedy_request_gives_the_same_text(client, model):
    # the second of each pair is served partly from the prefix cache: that must not change the answer
    for prompt in ("My grandmother kept a notebook of recipes, letters and small drawings. On the first page she wrote",
                   "List of things to pack for a camping trip in the mountains during late autumn, with reasons:"):
        first, second = (client.completions.create(model=model, prompt=prompt, max_tokens=16, temperature=0)
                         for _ in range(2))
        assert second.usage.prompt_tokens_details.cached_tokens > 0
        assert second.choices[0].text == first.choices[0].text, prompt


def test_chat_prefix_cache_reported_in_usage(client, model):
    messages = [{"role": "user", "content": f"{uuid.uuid4().hex}: summarise the plot of Hamlet in one sentence, please."}]
    first = client.chat.completions.create(model=model, messages=messages, max_tokens=2)
    second = client.chat.completions.create(model=model, messages=messages, max_tokens=2)
    assert second.usage.prompt_tokens_details.cached_tokens >= 32
    assert second.usage.prompt_tokens_details.cached_tokens > first.usage.prompt_tokens_details.cached_tokens


def test_stop_string_is_never_emitted_and_cuts_the_greedy_text(client, model):
    warm(client, model, messages=STORY)
    unstopped = client.chat.completions.create(model=model, messages=STORY, max_tokens=32, temperature=0,
                                               extra_body={"ignore_eos": True}).choices[0].message.content
    stop = unstopped[len(unstopped) // 2:len(unstopped) // 2 + 5]  # most likely spans a token boundary
    expected = unstopped[:unstopped.index(stop)]
    r = client.chat.completions.create(model=model, messages=STORY, max_tokens=32, temperature=0, stop=[stop, "\x00never"],
                                       extra_body={"ignore_eos": True})
    assert r.choices[0].message.content == expected
    assert r.choices[0].finish_reason == "stop"
    text, finish, _, _ = stream_chat(client, model=model, messages=STORY, max_tokens=32, temperature=0, stop=stop,
                                     extra_body={"ignore_eos": True})
    assert stop not in text
    assert (text, finish) == (expected, "stop")


def test_finish_reason_length_when_max_tokens_is_reached(client, model):
    r = client.chat.completions.create(model=model, messages=STORY, max_tokens=3, temperature=0)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3


def test_chat_logprobs(client, model):
    r = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=5, temperature=0, logprobs=True,
                                       top_logprobs=3, extra_body={"ignore_eos": True})
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens == 5
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for t in content:
        assert t.logprob <= 0 and bytes(t.bytes).decode() == t.token
        assert len(t.top_logprobs) == 3
        values = [top.logprob for top in t.top_logprobs]
        assert values == sorted(values, reverse=True)
        assert t.top_logprobs[0].token == t.token  # greedy picks the most likely token
        assert abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6


def test_completion_logprobs(client, model):
    r = client.completions.create(model=model, prompt="The capital of France is", max_tokens=4, temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == r.usage.completion_tokens == 4
    assert "".join(lp.tokens) == r.choices[0].text
    assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(4)]
    assert all(len(top) == 2 and max(top.values()) <= 0 for top in lp.top_logprobs)


def test_seed_makes_sampling_reproducible(client, model):
    def sample(seed: int) -> str:
        return client.chat.completions.create(model=model, messages=STORY, max_tokens=16, temperature=1.0,
                                              seed=seed).choices[0].message.content

    warm(client, model, messages=STORY)
    assert sample(1234) == sample(1234)
    assert len({sample(seed) for seed in (1, 2, 3, 4)}) > 1


def test_completion_with_string_and_token_id_prompts(client, model, tokenizer):
    prompt = "The capital of France is"  # shorter than a block: nothing of it is ever cached
    by_text = client.completions.create(model=model, prompt=prompt, max_tokens=6, temperature=0)
    assert by_text.object == "text_completion" and by_text.id.startswith("cmpl-")
    assert "Paris" in by_text.choices[0].text
    ids = tokenizer.encode(prompt)
    assert by_text.usage.prompt_tokens == len(ids)
    by_ids = client.completions.create(model=model, prompt=ids, max_tokens=6, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text
    assert by_ids.usage.prompt_tokens == len(ids)


def test_streamed_completion(client, model):
    full = client.completions.create(model=model, prompt="Once upon a time", max_tokens=12, temperature=0)
    parts, usage = [], None
    for chunk in client.completions.create(model=model, prompt="Once upon a time", max_tokens=12, temperature=0,
                                           stream=True, stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            parts.append(choice.text)
    assert "".join(parts) == full.choices[0].text
    assert usage.completion_tokens == full.usage.completion_tokens


def test_models_list(client, model):
    models = client.models.list()
    assert [m.id for m in models.data] == [model]
    assert models.data[0].object == "model"
    assert client.models.retrieve(model).id == model
