"""agents/: who speaks. Batch-first agents, model backends and the rollout engine."""
