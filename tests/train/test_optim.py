"""train.optim.Adam: bit for bit torch.optim.Adam on CPU (that training imports no torch._dynamo:
tests/train/test_data_fast.py::test_training_imports_neither_dynamo_nor_sklearn)."""
import pytest
import torch

from train.optim import Adam


def _run(make, seed: int, lr: float, steps: int, skip_every: int = 0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    extra = torch.nn.Parameter(torch.randn(3))
    opt = make(list(net.parameters()) + [extra], lr)
    x, y = torch.randn(16, 7), torch.randn(16, 3)
    for i in range(steps):
        opt.zero_grad()
        out = net(x)
        if skip_every and i % skip_every == 0:          # a step where one parameter has no gradient
            loss = ((out - y) ** 2).mean()
        else:
            loss = ((out + extra - y) ** 2).mean()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in list(net.parameters()) + [extra]]


@pytest.mark.parametrize("seed,lr,skip", [(0, 1e-3, 0), (1, 0.05, 0), (2, 0.3, 3), (3, 1e-4, 2)])
def test_bit_for_bit_torch_adam(seed, lr, skip):
    ours = _run(lambda p, lr: Adam(p, lr=lr), seed, lr, 60, skip)
    theirs = _run(lambda p, lr: torch.optim.Adam(p, lr=lr), seed, lr, 60, skip)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(ours, _run(lambda p, lr: Adam(p, lr=lr * 1.01), seed, lr, 60, skip)))


@pytest.mark.parametrize("kwargs,match", [({"lr": -1e-3}, "lr=-0.001"), ({"lr": float("nan")}, "lr=nan"),
                                          ({"betas": (0.9, 1.0)}, "betas"), ({"betas": (-0.1, 0.9)}, "betas"),
                                          ({"eps": -1e-8}, "eps")])
def test_bad_settings_refused_as_torch_does(kwargs, match):
    """torch.optim.Adam refuses these (a negative or NaN lr would silently climb the loss or poison the weights)."""
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError):
        torch.optim.Adam([p], **kwargs)
    with pytest.raises(ValueError, match=match):
        Adam([p], **kwargs)


def test_params_given_twice_or_as_one_tensor_refused():
    """A parameter listed twice would get two sets of moments and two updates a step; a bare tensor would be
    iterated into its rows."""
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="more than once"):
        Adam([p, p])
    with pytest.raises(TypeError, match="iterable of tensors"):
        Adam(p)
