"""Several nets of one structure on one input, evaluated as one batched computation.

SAC's and TD3's twin critics are two :class:`~eqrobot.nn.EquivariantNet` (or :class:`MLPNet`) with
the same constructor arguments, always called on the same input. Called one after the other they
repeat every parameter-free step (the spec encoder, the Gram invariants, ``asinh``) and launch every
op twice. :func:`grouped_forward` computes the shared part once and runs the MLPs side by side:
the first layer as one matrix product with both heads' weights concatenated (the input is shared),
later layers as one batched product ``(heads, B, hidden)``. The maths is each net's own (only the
summation order of the products may differ, at float rounding level); the parameters stay in the
nets, so state dicts, checkpoints and optimisers see exactly the modules they saw before.
"""

from __future__ import annotations

import torch
from torch import nn

from eqrobot.nn.nets import EquivariantNet, MLPNet

__all__ = ["can_group", "grouped_forward"]


def _linear_chain(net: nn.Module) -> list[nn.Module] | None:
    """The net's layers after its shared input: Linear / elementwise activation modules, or None."""
    if isinstance(net, EquivariantNet):
        if len(net.vector_layers) or net.n_out_vectors or not net._identity_perm:
            return None
        if net.trunk.invariants.weight is not None:  # learned projections: not shared between nets
            return None
        mods = list(net.trunk.mlp) + [net.head]
    elif isinstance(net, MLPNet):
        mods = list(net.net)
    else:
        return None
    if not isinstance(mods[0], nn.Linear) or not isinstance(mods[-1], nn.Linear):
        return None
    if any(isinstance(m, nn.Linear) and m.bias is None for m in mods):
        return None
    return mods


def _structure(net: nn.Module) -> tuple | None:
    chain = _linear_chain(net)
    if chain is None:
        return None
    layers = tuple(
        ("linear", m.in_features, m.out_features, m.bias is not None) if isinstance(m, nn.Linear) else type(m)
        for m in chain
    )
    if isinstance(net, EquivariantNet):
        enc, trunk = net.encoder, net.trunk
        return (EquivariantNet, layers, enc.spec, enc.channel_names, trunk.compress_invariants,
                trunk.invariants.mode, trunk.invariants.n_vectors)  # fmt: skip
    return (MLPNet, layers)


def can_group(nets: list[nn.Module]) -> bool:
    """True when :func:`grouped_forward` applies: two or more nets of the same class and structure,
    scalar outputs only, and no parameters before their MLPs (so that part can be shared)."""
    if len(nets) < 2:
        return False
    first = _structure(nets[0])
    return first is not None and all(_structure(n) == first for n in nets[1:])


def _shared_input(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(net, EquivariantNet):
        Vt, S = net.encoder.encode_t(x)
        inp, _ = net.trunk.mlp_input_t(Vt, S)
        return inp
    return x


def grouped_forward(nets: list[nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``tuple(net(x) for net in nets)`` for nets that :func:`can_group`, in fewer, larger ops.

    ``x`` is ``(B, in_dim)``; returns one ``(B, out_dim)`` tensor per net.
    """
    if x.dim() != 2:
        raise ValueError(f"grouped_forward takes a (batch, features) input, got shape {tuple(x.shape)}")
    chains = [_linear_chain(n) for n in nets]
    H, B = len(nets), x.shape[0]
    h = _shared_input(nets[0], x)  # (B, F), the same for every net
    first = True
    for layer in zip(*chains, strict=True):
        if not isinstance(layer[0], nn.Linear):
            h = layer[0](h)  # elementwise activation: one call on (H, B, width)
            continue
        if first:  # shared input: one (B, F) x (F, H * out) product
            W = torch.cat([m.weight for m in layer], dim=0)
            b = torch.cat([m.bias for m in layer], dim=0)
            h = torch.addmm(b, h, W.t()).view(B, H, -1).transpose(0, 1)
            first = False
        else:
            W = torch.stack([m.weight for m in layer], dim=0)
            b = torch.stack([m.bias for m in layer], dim=0)
            h = torch.baddbmm(b.unsqueeze(1), h, W.transpose(1, 2))
    return tuple(h.unbind(0))
