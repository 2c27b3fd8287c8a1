"""Data: corpora (documents, the salted split), packing into sequences, contrast sets, built-in concepts."""
