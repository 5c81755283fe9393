"""Tiny random causal language models built on the spot, with no network.

A byte-level BPE tokenizer trained with ``tokenizers`` on a few lines, wrapped as a
``PreTrainedTokenizerFast`` (eos and pad tokens, optionally a ChatML-style Jinja chat
template), and a 2-layer ``LlamaConfig`` model with hidden size 64, both saved with
``save_pretrained``. The weights are random (seeded): the model produces nonsense, which is
what a test of the real loading and generation code, and of the fallbacks, needs.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHAT_TEMPLATE", "build_tiny_causal_lm"]

EOS, PAD, BOS = "<|endoftext|>", "<|pad|>", "<|startoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, IM_START, IM_END]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "Alice adopted a beagle called Max last spring.",
    "Bob moved to Berlin and works as a nurse.",
    'Reply with one JSON object only: {"intent": "general", "queries": ["pets"], "k": 5}',
    "What pet does Alice have? Where does Bob live now?",
    "system user assistant: the weather is nice today in Paris.",
    "Memories: 1. Alice likes tea. 2. Bob plays chess on Sundays.",
]


def build_tiny_causal_lm(root: Path, *, chat_template: bool = True, seed: int = 0) -> Path:
    """Build and save a tiny random Llama model and its tokenizer in ``root``; return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[IM_START, IM_END],
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=0.3,  # large random weights: varied output, not one repeated token
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    root.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root
