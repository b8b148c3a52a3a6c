"""FinOps guardrails: metering, costs and forecasts, budgets (notify / freeze / throttle), rate limits."""
