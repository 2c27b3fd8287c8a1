"""Evaluate: statistics (r, slope, bootstrap, monotonic range), the propensity grid, steering evaluation and its
verdict, side effects (KL, capability)."""
