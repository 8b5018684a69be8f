"""64 concurrent streaming requests through the official async client all complete with exact usage."""

from __future__ import annotations

import asyncio

import openai

NUM_STREAMS = 64
MAX_TOKENS = 16


async def stream_one(client: openai.AsyncOpenAI, model: str, messages: list[dict]) -> tuple[str, int, openai.types.CompletionUsage]:
    text, tokens, usage = [], 0, None
    stream = await client.chat.completions.create(model=model, messages=messages, max_tokens=MAX_TOKENS, temperature=0,
                                                  logprobs=True, stream=True, stream_options={"include_usage": True},
                                                  extra_body={"ignore_eos": True})
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            tokens += len(choice.logprobs.content) if choice.logprobs else 0
    return "".join(text), tokens, usage


def test_64_concurrent_streams_complete_with_correct_usage(server, model, chat_tokens):
    prompts = [[{"role": "user", "content": f"Tell me one fact about the number {i}."}] for i in range(NUM_STREAMS)]

    async def run_all():
        async with openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=300) as client:
            return await asyncio.gather(*(stream_one(client, model, p) for p in prompts))

    async def run_alone():
        async with openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=300) as client:
            return await stream_one(client, model, prompts[-1])

    results = asyncio.run(run_all())
    for messages, (text, tokens, usage) in zip(prompts, results):
        assert usage is not None
        assert usage.completion_tokens == tokens == MAX_TOKENS
        assert usage.prompt_tokens == chat_tokens(messages)
        assert text
    server.wait_idle()
    assert asyncio.run(run_alone())[0] == results[-1][0]  # greedy text does not depend on the batch it ran in
