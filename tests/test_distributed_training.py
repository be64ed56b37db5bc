"""Distributed training smoke test: two CPU processes (gloo) under DistributedDataParallel.

The parent launches this very file on two ranks with ``torchrun``; each rank computes a
masked next-token loss of the tiny model on its own batch, runs backward, and saves its
gradients. DDP must leave both ranks with the same
gradients: the mean of the single-process gradients of the two batches.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dialogym.agents.models import tiny_model, tiny_tokenizer

WORLD_SIZE = 2
#: (context, reply) pairs per rank; the loss is taken on reply tokens only.
BATCHES = [
    [("<|im_start|>user\nName a colour.<|im_end|>\n", "Red.<|im_end|>"), ("Pick a fruit: ", "a pear")],
    [("<|im_start|>user\nSay hi.<|im_end|>\n", "Hello there!<|im_end|>"), ("2+2=", "4")],
]


def encode(pairs):
    """Right-padded token ids, attention mask and a loss mask that is 1 only on reply tokens."""
    tokenizer = tiny_tokenizer()
    rows = []
    for context, reply in pairs:
        context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
        rows.append((context_ids + reply_ids, [0] * len(context_ids) + [1] * len(reply_ids)))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([row + [pad] * (width - len(row)) for row, _ in rows])
    attention = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row, _ in rows])
    loss_mask = torch.tensor([mask + [0] * (width - len(mask)) for _, mask in rows])
    return ids, attention, loss_mask


def masked_loss(model, pairs):
    ids, attention, loss_mask = encode(pairs)
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1]
    targets, mask = ids[:, 1:], loss_mask[:, 1:].float()
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return (per_token * mask).sum() / mask.sum()


def single_process_gradients(pairs):
    model, _ = tiny_model(seed=0)
    masked_loss(model, pairs).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def rank_main(out_dir: Path) -> None:
    """What each launched rank runs (the launcher sets RANK, WORLD_SIZE, MASTER_ADDR...)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        rank = dist.get_rank()
        model, _ = tiny_model(seed=0)
        ddp = DistributedDataParallel(model)
        masked_loss(ddp, BATCHES[rank]).backward()
        grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
        torch.save({"world_size": dist.get_world_size(), "grads": grads}, out_dir / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def launch_command(out_dir: Path) -> list[str]:
    # torchrun --standalone picks a free port itself. (`accelerate launch --cpu` runs one
    # process unless mpirun is installed; `accelerate launch --multi_gpu` also starts this
    # script on a CPU-only machine, through the same torch.distributed.run.)
    script = [str(Path(__file__).resolve()), str(out_dir)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD_SIZE}", *script]


@pytest.mark.timeout(120)
def test_ddp_ranks_hold_identical_gradients_equal_to_the_mean_of_their_batches(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(launch_command(tmp_path), env=env, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD_SIZE)]
    assert [r["world_size"] for r in ranks] == [WORLD_SIZE] * WORLD_SIZE
    alone = [single_process_gradients(pairs) for pairs in BATCHES]
    first, second = (r["grads"] for r in ranks)
    assert first.keys() == second.keys() == alone[0].keys()
    for name in first:
        assert torch.equal(first[name], second[name]), f"{name}: ranks disagree after all-reduce"
        mean = (alone[0][name] + alone[1][name]) / 2
        torch.testing.assert_close(first[name], mean, rtol=1e-4, atol=1e-6, msg=f"{name}: not the mean gradient")
    # The batches differ, so a missing all-reduce could not pass the checks above.
    assert not torch.allclose(alone[0]["model.embed_tokens.weight"], alone[1]["model.embed_tokens.weight"])


if __name__ == "__main__":
    rank_main(Path(sys.argv[1]))
