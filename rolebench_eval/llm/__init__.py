"""The OpenAI-compatible client every LLM call goes through: requests, cache, budget, CLI flags."""
