"""Fused projections and oneDNN-prepacked weights compute what the plain layers compute."""

import pytest
import torch
from torch import nn

from tokenmill.models.linear import PackedLinear, can_pack, fuse_linears, pack_linears


def test_fused_linear_concatenates_outputs():
    torch.manual_seed(0)
    parts = [nn.Linear(32, n, bias=True) for n in (24, 8, 8)]
    x = torch.randn(5, 32)
    fused = fuse_linears(parts)
    torch.testing.assert_close(fused(x), torch.cat([p(x) for p in parts], dim=-1))


@pytest.mark.skipif(not can_pack(torch.device("cpu"), torch.float32), reason="oneDNN is not available")
@pytest.mark.parametrize("rows", [1, 3, 64, 257])
def test_packed_linear_matches_plain_linear(rows):
    torch.manual_seed(rows)
    plain = nn.Linear(96, 200, bias=rows % 2 == 1)
    x = torch.randn(rows, 96)
    torch.testing.assert_close(PackedLinear(plain)(x), plain(x), rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not can_pack(torch.device("cpu"), torch.float32), reason="oneDNN is not available")
def test_pack_linears_replaces_every_linear():
    model = nn.Sequential(nn.Linear(8, 8), nn.Sequential(nn.ReLU(), nn.Linear(8, 4)))
    x = torch.randn(2, 8)
    expected = model(x)
    assert pack_linears(model) == 2
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-4)
