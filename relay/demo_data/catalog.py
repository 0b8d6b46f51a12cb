"""What the demo ledger is made of: models with their real prices, user domains with their
budgets, names, calling origins, and the planted anomalies' fixed parts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from relay.costing.pricing import PriceTable

# Prices below are the providers' public list prices (USD per 1M tokens, 2025). OpenAI and Gemini
# models are priced from the relay's own table (relay/data/prices.toml) when it holds them, so a
# demo "computed" cost is exactly what the relay would compute; the figures here are the fallback
# (OpenRouter's come from its /models list at run time, so the relay's table does not hold them).


@dataclass(frozen=True, slots=True)
class DemoModel:
    provider: str
    model: str
    kind: str  # chat | reasoning | embed | free | proxy
    input: Decimal  # USD per 1M input tokens
    cached: Decimal  # USD per 1M cached input tokens
    output: Decimal  # USD per 1M output tokens (reasoning included)
    weight: float  # popularity; 0 = only used by a planted anomaly
    first_token_ms: float
    ms_per_token: float


def _m(
    provider: str, model: str, kind: str, p: str, w: float, ttft: float, mpt: float
) -> DemoModel:
    """A model row; `p` is "input/cached/output" USD per 1M tokens."""
    inp, cached, out = (Decimal(x) for x in p.split("/"))
    return DemoModel(provider, model, kind, inp, cached, out, w, ttft, mpt)


MODELS: tuple[DemoModel, ...] = (
    _m("openai", "gpt-4o-mini", "chat", "0.15/0.075/0.60", 25, 350, 9),
    _m("openai", "gpt-4.1-mini", "chat", "0.40/0.10/1.60", 18, 400, 9),
    _m("openai", "gpt-4.1-nano", "chat", "0.10/0.025/0.40", 8, 250, 5),
    _m("openai", "gpt-4.1", "chat", "2.00/0.50/8.00", 3, 500, 14),
    _m("openai", "gpt-4o", "chat", "2.50/1.25/10.00", 2, 450, 12),
    _m("openai", "gpt-5-mini", "reasoning", "0.25/0.025/2.00", 6, 900, 8),
    _m("openai", "gpt-5-nano", "reasoning", "0.05/0.005/0.40", 4, 700, 6),
    _m("openai", "o4-mini", "reasoning", "1.10/0.275/4.40", 2, 1200, 8),
    _m("openai", "text-embedding-3-small", "embed", "0.02/0.02/0", 6, 120, 0),
    _m("gemini", "gemini-2.0-flash", "chat", "0.10/0.025/0.40", 10, 300, 4),
    _m("gemini", "gemini-2.5-flash", "reasoning", "0.30/0.075/2.50", 8, 700, 5),
    _m("gemini", "gemini-2.5-flash-lite", "chat", "0.10/0.025/0.40", 4, 250, 3),
    _m("gemini", "gemini-2.5-pro", "reasoning", "1.25/0.31/10.00", 1, 1500, 10),
    _m("openrouter", "anthropic/claude-3.5-haiku", "chat", "0.80/0.08/4.00", 3, 600, 10),
    _m("openrouter", "anthropic/claude-sonnet-4", "chat", "3.00/0.30/15.00", 1.5, 900, 15),
    _m("openrouter", "google/gemini-2.0-flash-001", "chat", "0.10/0.025/0.40", 2, 400, 5),
    _m("openrouter", "openai/gpt-4o-mini", "chat", "0.15/0.075/0.60", 1.5, 450, 10),
    _m("openrouter", "meta-llama/llama-3.3-70b-instruct:free", "free", "0/0/0", 2, 900, 20),
    _m("openrouter", "anthropic/claude-opus-4", "chat", "15.00/1.50/75.00", 0, 1500, 25),
    _m("proxy", "", "proxy", "0/0/0", 3, 200, 0),
)


@dataclass(frozen=True, slots=True)
class DemoDomain:
    domain: str
    share: float  # of users
    tz: float  # UTC offset, hours
    tz_spread: float  # standard deviation of users' peak hour, hours (wide for webmail)
    peak: float  # local hour of peak use
    activity: float  # multiplier on per-user activity
    limit: Decimal | None  # "@domain" budget; None = falls to "*"
    days: int


DOMAINS: tuple[DemoDomain, ...] = (
    DemoDomain("students.example.edu", 0.50, 5.5, 1.5, 15, 1.0, Decimal("0.50"), 7),
    DemoDomain("example.edu", 0.10, 5.5, 1.5, 11, 1.6, Decimal("5.00"), 30),
    DemoDomain("example.com", 0.15, -5, 1.5, 11, 2.0, Decimal("2.00"), 7),
    DemoDomain("gmail.com", 0.20, 0, 6, 14, 0.6, None, 7),
    DemoDomain("outlook.com", 0.05, 1, 6, 14, 0.6, None, 7),
)
DEFAULT_BUDGET = (Decimal("0.10"), 7)  # "*"
VIP_BUDGET = (Decimal("25.00"), 30)  # the most active example.edu user, by exact email
BLOCKED_BUDGET = (Decimal("0"), 1)  # one gmail.com user, blocked by exact email

FIRST_NAMES = (
    "aarav,priya,arjun,ananya,rohan,diya,kabir,meera,vikram,sara,li,wei,mei,omar,fatima,yusuf,"
    "emma,liam,olivia,noah,ava,lucas,mia,ethan,zoe,leo,nina,ivan,elena,diego,lucia,kenji,yuki,"
    "amara,kofi,tariq,hana,jonas,freya,mateo"
)
LAST_NAMES = (
    "sharma,iyer,patel,reddy,khan,nair,das,gupta,rao,menon,chen,wang,kim,garcia,silva,smith,"
    "jones,brown,muller,rossi,novak,sato,tanaka,okafor,mensah,haddad,ali,lopez,martin,berg"
)
ORIGINS = (
    "", "", "", "https://chat.students.example.edu", "https://chat.students.example.edu",
    "https://llm-lab.example.edu", "http://localhost:5173", "http://localhost:8000",
    "https://colab.research.google.com", "https://tools.example.com", "https://my-app.vercel.app",
    "https://example.github.io",
)  # fmt: skip
LEAK_ORIGIN = "https://free-gpt-chat.example.net"
PROXY_PATHS = (
    "/https://api.github.com/repos/sanand0/aipipe",
    "/https://en.wikipedia.org/api/rest_v1/page/summary/Large_language_model",
    "/https://raw.githubusercontent.com/datasets/gdp/main/data/gdp.csv",
    "/https://api.open-meteo.com/v1/forecast?latitude=13.08&longitude=80.27&hourly=temperature_2m",
)


@cache
def _relay_prices() -> PriceTable:
    return PriceTable.load()


def prices_of(m: DemoModel) -> tuple[Decimal, Decimal, Decimal]:
    """(input, cached input, output) USD per 1M tokens: the relay's table first, else ours."""
    if m.provider in {"openai", "gemini"}:
        p = _relay_prices().lookup(m.provider, m.model)
        if p is not None and p.input is not None:
            cached = p.cached_input if p.cached_input is not None else p.input
            return p.input, cached, p.output if p.output is not None else Decimal(0)
    return m.input, m.cached, m.output
