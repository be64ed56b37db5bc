"""benchmarks/: self-play and cross-play runs, scores, ratings and reports."""
