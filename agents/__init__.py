"""agents/: who speaks. Batch-first agents, model backends, the rollout engine, and the
Gymnasium env whose other seats they play (``gym_env``)."""
