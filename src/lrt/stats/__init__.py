"""Statistics: mergeable float64 moments (with a rank all-reduce), bounded row and norm samples."""
