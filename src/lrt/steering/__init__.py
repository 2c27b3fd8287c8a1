"""Steering vectors: contrastive data, CAA/PCA vectors, application hooks, transfer and evaluation."""
