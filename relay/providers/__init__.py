"""The providers as data (registry.py), the HTTP/1.1 client that reaches them, their stream
format, OpenRouter's price list and the --dev demo model."""
