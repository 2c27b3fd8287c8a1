"""lrt: linear representation transfer between language models of one family."""
