"""Builds a tiny Llama, its tokenizer and an alpaca dataset, locally (no Hub), for the real-Axolotl tests.

    python tiny_model.py OUT_DIR

writes OUT_DIR/model (LlamaForCausalLM: 2 layers, hidden 64, 4 heads, safetensors; a byte-level BPE tokenizer
trained on the generated corpus, saved as PreTrainedTokenizerFast with bos/eos/pad/unk and a chat template) and
OUT_DIR/data/alpaca.jsonl (arithmetic questions whose answers the model can learn within a few dozen steps, so the
loss visibly falls). Deterministic: the same files every time. Test-only; runs in the real-Axolotl venv.
"""

import json
import os
import random
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>"]


def rows(n: int) -> list:
    rng = random.Random(0)
    out = []
    for _ in range(n):
        a, b = rng.randint(0, 50), rng.randint(0, 50)
        out.append({"instruction": f"Add {a} and {b}.", "input": "", "output": f"The sum of {a} and {b} is {a + b}."})
    return out


def corpus(data: list) -> list:
    template = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    lines = [template, "### Instruction:", "### Response:", "### Input:"]
    for r in data:
        lines += [r["instruction"], r["output"]]
    return lines


def build(out_dir: str) -> None:
    data = rows(400)
    data_dir = os.path.join(out_dir, "data")
    model_dir = os.path.join(out_dir, "model")
    os.makedirs(data_dir, exist_ok=True)
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(data_dir, "alpaca.jsonl"), "w", encoding="utf-8") as f:
        for r in data:
            f.write(json.dumps(r) + "\n")

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(data), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 512
    fast.save_pretrained(model_dir)

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(model_dir, safe_serialization=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tiny_model.py OUT_DIR")
    build(sys.argv[1])
