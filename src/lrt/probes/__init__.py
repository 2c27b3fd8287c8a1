"""Linear probes: fitted on one model's mean-pooled states, carried to the other model through the maps."""
