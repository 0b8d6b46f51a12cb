"""Anthropic's extended thinking, as the budget rule sees it: thinking tokens are output.

`thinking: {"type": "enabled", "budget_tokens": B}` lets the model think up to B tokens. Without
the `interleaved-thinking-2025-05-14` beta Anthropic requires 1024 <= B < max_tokens, so
max_tokens bounds the reply; with it B may exceed max_tokens (a budget across the thinking
blocks of a turn). Reading the worst case as the larger of the two is right either way, and
needs no header: a request with B >= max_tokens without the beta is refused by Anthropic at $0.
`thinking: {"type": "adaptive"}` (what Claude Code sends) and `"disabled"` have no budget:
max_tokens bounds them.

Pure functions over the request body (its `max_tokens` already read and checked).
"""

from __future__ import annotations

from typing import Any

from relay.errors import BadRequest

MIN_THINKING = 1024  # Anthropic's smallest thinking budget
# A capped call keeps at least this many tokens of its maximum for the reply after thinking
# (admission's smallest useful cap, repeated here so that this module depends on nothing).
REPLY_ROOM = 16


def thinking_budget(body: dict[str, Any]) -> int | None:
    """`thinking.budget_tokens` when thinking is enabled with a budget, else None. A budget
    that is not a whole number of at least 1,024 is refused, as Anthropic refuses it: the
    relay could neither bound what it allows nor lower it to a valid one."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if budget is None:
        return None  # Anthropic refuses it (at $0): there is nothing to bound
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_THINKING:
        raise BadRequest(
            f"thinking.budget_tokens must be a whole number of at least {MIN_THINKING:,}",
            code="invalid_thinking",
        )
    return budget


def worst_output(body: dict[str, Any], max_tokens: int) -> int:
    """The most output tokens the request allows: max_tokens, or a larger thinking budget."""
    budget = thinking_budget(body)
    return max(max_tokens, budget) if budget is not None else max_tokens


def smallest_cap(body: dict[str, Any]) -> int:
    """The smallest cap worth sending: with a thinking budget, the 1,024 tokens Anthropic
    requires for thinking plus room for the reply; else 0 (no floor of its own)."""
    return MIN_THINKING + REPLY_ROOM if thinking_budget(body) is not None else 0


def cap_thinking(body: dict[str, Any], max_tokens: int, cap: int) -> None:
    """Lower the request to `cap` output tokens in all: max_tokens to at most `cap`, and a
    thinking budget to at most `cap` less room for the reply, never under 1,024 (the caller
    sends such a cap only when it is at least `smallest_cap`)."""
    body["max_tokens"] = min(max_tokens, cap)
    budget = thinking_budget(body)
    if budget is not None:
        body["thinking"]["budget_tokens"] = max(MIN_THINKING, min(budget, cap - REPLY_ROOM))
