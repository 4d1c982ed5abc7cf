"""A tiny random Llama with a locally trained tokenizer and a chat template.

For the tests and the offline demo: nothing is downloaded. The tokenizer is a
byte-level BPE trained on text we pass in, the model is built from a config.
``system_ok=False`` gives a chat template that raises on a system message, as some
real models' templates do.
"""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
NO_SYSTEM_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer(corpus: list[str], vocab_size: int = 1000, max_length: int = 512):
    """A byte-level BPE wrapped as a transformers fast tokenizer (BOS prepended)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", model_max_length=max_length,
    )


def build_tiny_llama(path: str | Path, corpus: list[str], system_ok: bool = True, seed: int = 0,
                     vocab_size: int = 1000, output_scale: float = 1.0, context: int = 512) -> Path:
    """Write a ~150k-parameter Llama plus tokenizer and chat template to ``path``.

    ``context`` is the number of positions the model and its tokenizer declare; servers that check
    it (``transformers serve`` since 5.25) refuse longer prompts, so a model that must read a
    judge's prompt needs a few thousand. Rotary positions have no weights: the network is the same.

    ``output_scale`` multiplies the final norm's weight: at 1.0 the 0.02-init tied embeddings cap
    every logit near +-1.3, so however well LoRA learns, the loss stays near ln(vocab) and greedy
    decoding barely moves; a larger scale lifts that cap (the same random network otherwise).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    path = Path(path)
    tokenizer = train_tokenizer(corpus, vocab_size, context)
    tokenizer.chat_template = CHAT_TEMPLATE if system_ok else NO_SYSTEM_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=context,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.model.norm.weight.mul_(output_scale)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
