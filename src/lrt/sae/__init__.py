"""Sparse autoencoders: the model, the formats people have (SAELens, sparsify, GemmaScope), TopK training on
streamed activations, and transfer to the large model through the pair of affine maps."""
