"""Fast0Tag's zero-shot mapping, trained beside TaggerNet: image features -> a direction in
word-vector space (Zhang et al., CVPR 2016). Training code only; the zero-shot stage reads the
trained mapping (transforms/stages/zero_shot.py)."""

from __future__ import annotations

import numpy as np

from transforms.stages.zero_shot import Fast0TagMapping


def train_fast0tag(
    features: np.ndarray, labels: np.ndarray, label_vectors: np.ndarray, meta: dict,
    epochs: int = 30, lr: float = 0.01, batch_size: int = 128, weight_decay: float = 1e-4, seed: int = 0,
    progress: bool = False,
) -> Fast0TagMapping:
    """Learn the map with Fast0Tag's ranking objective: for each image and each relevant tag p,
    log(1 + sum over irrelevant tags n of exp(s_n - s_p)), s = direction . tag vector."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    has_tags = labels.sum(1) > 0
    x = torch.from_numpy(features[has_tags].astype(np.float32))
    y = torch.from_numpy(labels[has_tags].astype(bool))
    mean, std = x.mean(0), x.std(0).clamp_min(0.1 * float(x.std(0).mean()))
    x = (x - mean) / std
    v = torch.from_numpy(label_vectors.astype(np.float32))
    layer = torch.nn.Linear(x.shape[1], v.shape[1])
    opt = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=weight_decay)
    from tqdm import tqdm

    for _ in tqdm(range(epochs), desc="zero-shot mapping", unit="epoch", disable=not progress, leave=False):
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            s = layer(x[idx]) @ v.T
            pos = y[idx]
            lse_neg = torch.logsumexp(s.masked_fill(pos, float("-inf")), dim=1, keepdim=True)
            per_pos = torch.nn.functional.softplus(lse_neg - s)
            loss = (per_pos * pos).sum(1).div(pos.sum(1).clamp_min(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return Fast0TagMapping(
        layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy(),
        mean.numpy(), std.numpy(), meta,
    )
