"""The neural detector's network (torch; imported only by training and export, never at inference).

Input per hop: ``x (n_ch, n_in)`` in dB from :class:`uspd.detector.neural.FeatureStream` (velocity-band power and,
if enabled, its rise above a slow per-channel background; one channel per carrier x mic, any count 2..16).
The network is:

1. per-channel shared encoder: normalise (per-band mean/std measured on the training data), two small dense layers;
2. permutation-invariant pooling over channels: mean and max of the encodings, plus the mean and the standard
   deviation across channels of the normalised input per band (the inter-mic spread carries the
   "loudspeaker distortion is alike at every mic, echoes are not" cue);
   optionally (``n_echo`` > 0) a small dense encoding of the echo features ``e (n_echo,)``: the velocity-band power
   of the front end's echo spectrum (Doppler power NOT common to all mics, so loudspeaker/music distortion removed),
   averaged over carriers;
3. optionally (``proj`` > 0) a linear projection of the pooled vector to ``proj`` values (a low-rank GRU input
   matrix: its full form holds most of the parameters, so a bottleneck leaves room for a larger state);
   then a GRU over hops (fixed-size state: the only memory);
4. a dense head: two logits, ``score`` (any motion) and ``major``.

Training runs the batched sequence form (:meth:`DopplerNet.forward`, torch's fused GRU); export uses
:class:`StepNet`, the same weights written as one hop in, one hop out, with the GRU cell spelled out as MatMul/Add
so that dynamic int8 quantization covers every weight matrix.
"""
from __future__ import annotations

import torch
from torch import nn


def _linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``x @ W.T + b`` as MatMul + Add (exports as a quantizable MatMul, never Gemm)."""
    return torch.matmul(x, layer.weight.t()) + layer.bias


class DopplerNet(nn.Module):
    """Causal streaming detector. Shapes: x (N, T, C, n_in) dB, mask (N, T, C) 1 = channel present (or None),
    e (N, T, n_echo) dB echo features when ``n_echo`` > 0."""

    def __init__(self, n_in: int = 64, enc: int = 32, hidden: int = 48, n_echo: int = 0, echo_enc: int = 16,
                 proj: int = 0, mover_head: bool = False):
        super().__init__()
        self.n_in, self.enc_dim, self.hidden, self.proj_dim = n_in, enc, hidden, proj
        self.n_echo, self.echo_enc = n_echo, (echo_enc if n_echo else 0)
        self.register_buffer("in_mean_db", torch.zeros(n_in))
        self.register_buffer("in_std_db", torch.ones(n_in))
        self.enc1 = nn.Linear(n_in, enc)
        self.enc2 = nn.Linear(enc, enc)
        if n_echo:
            self.register_buffer("echo_mean_db", torch.zeros(n_echo))
            self.register_buffer("echo_std_db", torch.ones(n_echo))
            self.enc_echo = nn.Linear(n_echo, echo_enc)
        if proj:
            self.proj = nn.Linear(self.pooled_dim, proj)
        self.gru = nn.GRU(proj or self.pooled_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)
        #: Training-only second task (``uspd train --mover-weight``): a logistic readout of the state, "a pet or a
        #: vacuum moves and no person does"; not in the exported graph, its weights go into the manifest instead.
        self.mover = nn.Linear(hidden, 1) if mover_head else None

    @property
    def arch(self) -> dict[str, int]:
        """Constructor arguments that rebuild this network (stored with the weights in a checkpoint)."""
        arch = {"n_in": self.n_in, "enc": self.enc_dim, "hidden": self.hidden, "n_echo": self.n_echo,
                "echo_enc": self.echo_enc, "proj": self.proj_dim}
        return {**arch, "mover_head": True} if self.mover is not None else arch

    @property
    def pooled_dim(self) -> int:
        return 2 * self.enc_dim + 2 * self.n_in + self.echo_enc

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None, echo: torch.Tensor | None = None
              ) -> torch.Tensor:
        """Per-hop GRU input: x (..., C, n_in), echo (..., n_echo) -> (..., proj or pooled_dim)."""
        z = (x - self.in_mean_db) / self.in_std_db
        e = torch.relu(_linear(torch.relu(_linear(z, self.enc1)), self.enc2))
        if mask is None:
            e_mean = e.mean(dim=-2)
            e_max = e.max(dim=-2).values
            z_mean = z.mean(dim=-2)
            z_var = ((z - z_mean.unsqueeze(-2)) ** 2).mean(dim=-2)
        else:
            m = mask.unsqueeze(-1).to(x.dtype)
            n = m.sum(dim=-2).clamp(min=1.0)
            e_mean = (e * m).sum(dim=-2) / n
            e_max = (e - (1.0 - m) * 1e4).max(dim=-2).values  # e >= 0, so absent channels never win
            z_mean = (z * m).sum(dim=-2) / n
            z_var = (((z - z_mean.unsqueeze(-2)) ** 2) * m).sum(dim=-2) / n
        z_std = torch.sqrt(z_var + 1e-4)
        parts = [e_mean, e_max, z_mean, z_std]
        if self.n_echo:
            if echo is None:
                raise ValueError("DopplerNet: this network takes echo features e")
            ze = (echo - self.echo_mean_db) / self.echo_std_db
            parts.append(torch.relu(_linear(ze, self.enc_echo)))
        pooled = torch.cat(parts, dim=-1)
        return _linear(pooled, self.proj) if self.proj_dim else pooled

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                h0: torch.Tensor | None = None, e: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, T, C, n_in), e (N, T, n_echo) -> logits (N, T, 2) [score, major] (N, T, 3 with the mover head:
        [score, major, mover]), h (1, N, hidden)."""
        p = self.embed(x, mask, e)
        y, h = self.gru(p, h0)
        logits = self.head(y)
        return (logits if self.mover is None else torch.cat([logits, self.mover(y)], dim=-1)), h

    def step(self, x: torch.Tensor, h: torch.Tensor, e: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One hop, the GRU cell spelled out as MatMul/Add (for export): x (C, n_in), h (1, hidden)[, e (n_echo,)]
        -> logits (1, 2), h_new (1, hidden)."""
        p = self.embed(x, None, e).unsqueeze(0)  # (1, P)
        g = self.gru
        gi = torch.matmul(p, g.weight_ih_l0.t()) + g.bias_ih_l0
        gh = torch.matmul(h, g.weight_hh_l0.t()) + g.bias_hh_l0
        hs = self.hidden
        r = torch.sigmoid(gi[:, :hs] + gh[:, :hs])
        z = torch.sigmoid(gi[:, hs:2 * hs] + gh[:, hs:2 * hs])
        n = torch.tanh(gi[:, 2 * hs:] + r * gh[:, 2 * hs:])
        h_new = (1.0 - z) * n + z * h
        return _linear(h_new, self.head), h_new


class EnsembleNet(nn.Module):
    """Several :class:`DopplerNet` members (trained apart, e.g. with other seeds) run side by side on the same
    inputs; the outputs are the mean of the members' logits. The state is the members' states concatenated
    (``hidden`` = their sum), so the streaming interface is a single network's."""

    def __init__(self, members: list[DopplerNet]):
        super().__init__()
        if not members:
            raise ValueError("EnsembleNet: no members")
        first = members[0]
        for m in members[1:]:
            if (m.n_in, m.n_echo) != (first.n_in, first.n_echo):
                raise ValueError("EnsembleNet: members take different inputs")
        self.members = nn.ModuleList(members)
        self.n_in, self.n_echo = first.n_in, first.n_echo
        self.hidden = sum(m.hidden for m in members)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                h0: torch.Tensor | None = None, e: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`DopplerNet.forward`: logits (N, T, 2) are the members' mean (mover heads left out), h (1, N, sum
        of hidden)."""
        h0s = [None] * len(self.members) if h0 is None else self._split(h0)
        outs = [m(x, mask, h, e) for m, h in zip(self.members, h0s)]
        return self._join([(logits[..., :2], h) for logits, h in outs])

    def step(self, x: torch.Tensor, h: torch.Tensor, e: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`DopplerNet.step`, each member on its own part of ``h``."""
        return self._join([m.step(x, hm, e) for m, hm in zip(self.members, self._split(h))])

    def _split(self, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(h, [m.hidden for m in self.members], dim=-1)

    @staticmethod
    def _join(outs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Members' (logits, state) -> (mean logits, states concatenated)."""
        return torch.stack([o[0] for o in outs]).mean(dim=0), torch.cat([o[1] for o in outs], dim=-1)


class StepNet(nn.Module):
    """One hop of a :class:`DopplerNet` or an :class:`EnsembleNet`: x (C, n_in) dB, h (1, hidden)[, e (n_echo,) dB]
    -> probs (2,) [score, major], h_new (1, hidden)."""

    def __init__(self, net: DopplerNet | EnsembleNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, h: torch.Tensor, e: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, h_new = self.net.step(x, h, e)
        return torch.sigmoid(logits)[0], h_new


def count_params(net: DopplerNet | EnsembleNet) -> int:
    """Trainable parameters."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))


def macs_per_hop(net: DopplerNet | EnsembleNet, n_channels: int) -> int:
    """Multiply-accumulates of one hop for ``n_channels`` input channels (dense layers + GRU; elementwise ignored);
    an ensemble's is the sum of its members'."""
    if isinstance(net, EnsembleNet):
        return sum(macs_per_hop(m, n_channels) for m in net.members)
    per_ch = net.n_in * net.enc_dim + net.enc_dim * net.enc_dim
    gru_in = net.proj_dim or net.pooled_dim
    gru = 3 * (gru_in * net.hidden + net.hidden * net.hidden) + net.pooled_dim * net.proj_dim
    return int(n_channels * per_ch + net.n_echo * net.echo_enc + gru + net.hidden * 2)
