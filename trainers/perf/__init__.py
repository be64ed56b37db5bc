"""Performance benchmarks of the trainers: each prints ratios measured side by side in one run."""
