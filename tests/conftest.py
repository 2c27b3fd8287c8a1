"""Shared fixtures: a tiny BPE tokenizer, tiny random-init models of five architectures, small corpora."""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import pytest
import torch

torch.set_num_threads(int(os.environ.get("LRT_TEST_THREADS", "2")))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NATURAL_TEXT = SHARED / "data" / "natural_text.jsonl.gz"
CAA = SHARED / "data" / "caa"

WORDS = ("the a movie film book story good bad great awful plot actor scene music love hate was is and but "
         "not very really quite funny boring long short people time life world man woman day night city").split()


def make_docs(n: int = 60, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"doc_id": f"d{i}", "source": "synthetic",
             "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))) + "."} for i in range(n)]


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    return path


def train_tiny_tokenizer(vocab_size: int = 320, seed_text: str = ""):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = [d["text"] for d in make_docs(40)] + [seed_text]
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return train_tiny_tokenizer()


def tiny_config(arch: str, vocab: int, width: int = 32, layers: int = 3):
    from transformers import Gemma2Config, GPT2Config, GPTNeoXConfig, LlamaConfig, Qwen2Config

    common = dict(vocab_size=vocab, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    if arch == "gpt2":
        return GPT2Config(n_embd=width, n_layer=layers, n_head=4, n_positions=512, **common)
    if arch == "gpt_neox":
        return GPTNeoXConfig(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                             num_attention_heads=4, max_position_embeddings=512, **common)
    if arch == "llama":
        return LlamaConfig(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                           num_attention_heads=4, max_position_embeddings=512, **common)
    if arch == "qwen2":
        return Qwen2Config(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, **common)
    if arch == "gemma2":
        return Gemma2Config(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=width // 4,
                            max_position_embeddings=512, **common)
    raise ValueError(arch)


ARCHS = ("gpt2", "gpt_neox", "llama", "qwen2", "gemma2")


def tiny_model_dir(tmp: Path, arch: str, tokenizer, width: int = 32, layers: int = 3, seed: int = 0) -> Path:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, len(tokenizer), width, layers))
    d = tmp / f"{arch}-{width}x{layers}-{seed}"
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory, tiny_tokenizer):
    """Two tiny Llama models of different widths sharing one tokenizer, saved as local directories."""
    tmp = tmp_path_factory.mktemp("models")
    return (tiny_model_dir(tmp, "llama", tiny_tokenizer, 32, 3, seed=1),
            tiny_model_dir(tmp, "llama", tiny_tokenizer, 48, 4, seed=2))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("corpus") / "docs.jsonl.gz", make_docs(300))
