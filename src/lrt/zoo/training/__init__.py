"""Training the embedded family (above the pipeline: its cards measure the trained models with it)."""
