"""Bad requests get OpenAI-style error objects with the right status, and the server keeps serving."""

from __future__ import annotations

import httpx
import openai
import pytest

QUESTION = [{"role": "user", "content": "Hi"}]


def post(base_url: str, path: str, body: dict | bytes, **headers: str) -> httpx.Response:
    if isinstance(body, dict):
        return httpx.post(base_url + path, json=body, headers=headers, timeout=120)
    return httpx.post(base_url + path, content=body, headers={"content-type": "application/json", **headers}, timeout=120)


def error_of(r: httpx.Response, status: int) -> dict:
    """The OpenAI error object of r, after checking its status and shape."""
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    return err


def test_malformed_json_is_400(base_url, model):
    err = error_of(post(base_url, "/v1/chat/completions", b'{"model": "' + model.encode() + b'", "messages": ['), 400)
    assert err["type"] == "invalid_request_error"
    assert "JSON" in err["message"]


def test_body_sent_without_json_content_type_is_400_saying_so(base_url, model):
    # what `curl -d '{...}'` sends when -H 'Content-Type: application/json' is forgotten
    r = httpx.post(base_url + "/v1/chat/completions", content=b'{"model": "x"}',
                   headers={"content-type": "application/x-www-form-urlencoded"}, timeout=30)
    assert "Content-Type: application/json" in error_of(r, 400)["message"]


@pytest.mark.parametrize(("param", "value"), [
    ("max_tokens", "ten"), ("max_tokens", -1), ("max_tokens", 0), ("temperature", 5), ("temperature", "hot"),
    ("top_p", 0), ("n", 2), ("stream", "maybe"), ("stop", 5), ("messages", "Hi"), ("messages", []),
    ("presence_penalty", 3), ("top_logprobs", 50), ("seed", "abc"),
    # not supported yet: refused rather than silently ignored
    ("response_format", {"type": "json_object"}), ("logit_bias", {"42": -100}),
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
])
def test_invalid_parameter_is_400_naming_it(base_url, model, param, value):
    body = {"model": model, "messages": QUESTION, "max_tokens": 4, param: value}
    err = error_of(post(base_url, "/v1/chat/completions", body), 400)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert param in err["message"]


@pytest.mark.parametrize(("path", "fields", "param"), [
    ("/v1/chat/completions", '"messages": [{"role": "user", "content": "hi \\ud83d there"}]', "messages[0].content"),
    ("/v1/chat/completions", '"messages": [{"role": "user", "content": [{"type": "text", "text": "\\udc00"}]}]',
     "messages[0].content[0].text"),
    ("/v1/chat/completions", '"messages": [{"role": "user", "content": "hi"}], "stop": ["\\ud800"]', "stop"),
    ("/v1/completions", '"prompt": "half a pair \\ud83d"', "prompt"),
])
def test_half_a_surrogate_pair_is_400_naming_where(base_url, model, path, fields, param):
    """JSON can escape half of a surrogate pair alone; no tokenizer can read that, so it is refused, not a 500."""
    body = ('{"model": "%s", "max_tokens": 4, %s}' % (model, fields)).encode()
    err = error_of(post(base_url, path, body), 400)
    assert err["param"] == param and "unpaired surrogate" in err["message"]


def test_missing_required_field_is_400_naming_it(base_url, model):
    err = error_of(post(base_url, "/v1/chat/completions", {"messages": QUESTION}), 400)
    assert err["param"] == "model"
    err = error_of(post(base_url, "/v1/completions", {"model": model}), 400)
    assert err["param"] == "prompt"


def test_invalid_parameter_through_the_openai_client(client, model):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=QUESTION, temperature=5)
    assert info.value.status_code == 400 and info.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=QUESTION, max_tokens=-1)
    assert info.value.param == "max_tokens"


def test_out_of_vocabulary_token_ids_are_400(base_url, model, tokenizer):
    err = error_of(post(base_url, "/v1/completions", {"model": model, "prompt": [1, tokenizer.vocab_size], "max_tokens": 2}), 400)
    assert err["param"] == "prompt" and str(tokenizer.vocab_size) in err["message"]


def test_unknown_model_is_404(client, base_url, model):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-17", messages=QUESTION, max_tokens=2)
    assert info.value.status_code == 404 and info.value.code == "model_not_found"
    assert "gpt-17" in info.value.message and model in info.value.message
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-17", prompt="Hi", max_tokens=2)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-17")


def test_prompt_longer_than_the_context_is_400_with_both_lengths(client, model, chat_tokens, max_model_len):
    messages = [{"role": "user", "content": "hello " * max_model_len}]
    n = chat_tokens(messages)
    assert n > max_model_len
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=messages)
    assert info.value.code == "context_length_exceeded"
    assert str(max_model_len) in info.value.message and str(n) in info.value.message


def test_prompt_plus_max_tokens_over_the_context_is_400(client, model, tokenizer, max_model_len):
    prompt = "hello " * 100
    n = len(tokenizer.encode(prompt))
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=model, prompt=prompt, max_tokens=max_model_len)
    message = info.value.message
    assert str(max_model_len) in message and str(n) in message and str(n + max_model_len) in message


def test_server_keeps_serving_after_bad_requests(client, model, server):
    r = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=4, temperature=0)
    assert r.choices[0].message.content
    server.wait_idle()
    assert httpx.get(server.base_url + "/health", timeout=10).json() == {"status": "ok"}
