"""Pure guardrail decisions: policy evaluation, SLO burn rates, canary analysis, FinOps budgets."""
