"""Money: what a call used (usage.py), what that costs (pricing.py, cost.py, data/prices.toml)
and the budgets calls are admitted against (budget.py)."""
