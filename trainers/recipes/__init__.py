"""End-to-end training recipes: scripts that take a model from its starting point to a trained one and report both."""
