"""Steering: vectors (CAA, PCA, text contrasts), applying them (add / ablate / clamp hooks), transfer through a
map, and export as llama.cpp control vectors."""
