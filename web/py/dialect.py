"""Which API the playground speaks to a provider: OpenAI's chat completions (OpenAI, OpenRouter)
or Anthropic's Messages API (Claude). The page asks here for the request body, the extra
headers and the reply reader, so it has one code path for every provider.
Runs under CPython and MicroPython.
"""

import anthropic_chat
import chat


def request_body(provider, model_id, messages, temperature=None, max_tokens=None) -> list:
    """The streamed request's body as ordered (key, value) pairs (Claude takes no temperature:
    takes_temperature)."""
    if provider == "anthropic":
        return anthropic_chat.request_body(model_id, messages, max_tokens)
    return chat.request_body(provider, model_id, messages, temperature, max_tokens)


def takes_temperature(provider) -> bool:
    return provider != "anthropic"


def headers(provider) -> list:
    """[(name, value)] the provider's API needs besides the token and the content type (also
    on its model list)."""
    return [anthropic_chat.VERSION_HEADER] if provider == "anthropic" else []


def new_reply(provider):
    """An empty reply that reads the provider's stream events (`add(data)` per event)."""
    return anthropic_chat.Reply() if provider == "anthropic" else chat.Reply()
