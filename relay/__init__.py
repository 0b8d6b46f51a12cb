"""AI Pipe: a budgeted, streaming relay for LLM APIs."""

__version__ = "0.1.0"
