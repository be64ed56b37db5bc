"""trainers/: episodes into samples, and the objectives that learn from them."""
