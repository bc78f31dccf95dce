"""DARTS' α updates: first order = autograd, second order = a finite-difference check of the unrolled objective
(float64), and the model left exactly as found."""

import pytest
import torch
import torch.nn.functional as F

from raynas.errors import ConfigError
from raynas.nn.darts_search import DartsSupernet
from searchers.architect import Architect

LR_W, MOMENTUM, WD = 0.5, 0.9, 3e-4  # a large ξ so that the second-order term matters


def _tiny(seed: int = 0) -> tuple[DartsSupernet, tuple, tuple]:
    torch.manual_seed(seed)
    net = DartsSupernet(2, 3, 2, steps=2, multiplier=2, in_channels=1, reduction_positions=(1,)).double()
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_(0, 0.5)
    train = (torch.randn(6, 1, 4, 4, dtype=torch.float64), torch.randint(0, 3, (6,)))
    val = (torch.randn(6, 1, 4, 4, dtype=torch.float64), torch.randint(0, 3, (6,)))
    return net, train, val


def _sgd_with_momentum(net: DartsSupernet, train: tuple) -> torch.optim.SGD:
    opt = torch.optim.SGD(net.weight_parameters(), lr=LR_W, momentum=MOMENTUM, weight_decay=WD)
    net.loss(*train).backward()
    opt.step()  # fills the momentum buffers
    opt.zero_grad(set_to_none=True)
    return opt


def _unrolled_val_loss(net: DartsSupernet, train: tuple, val: tuple, opt: torch.optim.SGD) -> float:
    """L_val(w − ξ(m·buf + ∇w L_train + wd·w), α) at the current α, computed directly (weights restored)."""
    weights = net.weight_parameters()
    saved = [p.detach().clone() for p in weights]
    grads = torch.autograd.grad(net.loss(*train), weights)
    with torch.no_grad():
        for p, g in zip(weights, grads):
            p.sub_(LR_W * (MOMENTUM * opt.state[p]["momentum_buffer"] + g + WD * p))
        value = net.loss(*val).item()
        for p, s in zip(weights, saved):
            p.copy_(s)
    return value


def test_first_order_is_autograd_and_accepts_a_closure():
    net, _, val = _tiny()
    arch = Architect(net, order=1)
    grads, loss = arch.arch_gradient(val)
    expected = torch.autograd.grad(net.loss(*val), net.arch_parameters())
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e)
    assert loss == pytest.approx(net.loss(*val).item())
    # a GAN-style caller brings its own loss (here: a margin loss on the logits)
    closure = lambda: F.relu(1 - net(val[0]).max(dim=1).values).mean()  # noqa: E731
    grads, _ = arch.arch_gradient(closure)
    for g, e in zip(grads, torch.autograd.grad(closure(), net.arch_parameters())):
        torch.testing.assert_close(g, e)
    # the step moves α only (Adam's first step: lr · sign(g)), and leaves no gradient anywhere
    before = [p.detach().clone() for p in net.parameters()]
    assert arch.step(val) == pytest.approx(loss)
    moved = [not torch.equal(b, p) for b, p in zip(before, net.parameters())]
    assert moved == [any(p is a for a in net.arch_parameters()) for p in net.parameters()]
    assert all(p.grad is None for p in net.parameters())


def test_second_order_matches_finite_differences_of_the_unrolled_objective():
    net, train, val = _tiny()
    opt = _sgd_with_momentum(net, train)
    # DARTS' r = 0.01 (ε = r/‖d‖) is a coarse step for the Hessian-vector product on a net this small and
    # nonlinear (BN over 6 samples of 2x2 maps, ReLU and max-pool kinks): tens of percent off here. With a small r
    # the formula must converge to the exact gradient of the unrolled objective, which is what this checks;
    # test_second_order_is_darts_procedure checks the default r against DARTS' own procedure.
    grads, loss = Architect(net, order=2, r=1e-4).arch_gradient(val, train, w_optimizer=opt)
    assert loss == pytest.approx(_unrolled_val_loss(net, train, val, opt), rel=1e-12)
    first, _ = Architect(net, order=1).arch_gradient(val)
    gen = torch.Generator().manual_seed(1)
    h = 1e-5
    for _ in range(3):
        dirs = [torch.randn(a.shape, generator=gen, dtype=torch.float64) for a in net.arch_parameters()]
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                for a, d in zip(net.arch_parameters(), dirs):
                    a.add_(d, alpha=sign * h)
            values.append(_unrolled_val_loss(net, train, val, opt))
            with torch.no_grad():
                for a, d in zip(net.arch_parameters(), dirs):
                    a.sub_(d, alpha=sign * h)
        numeric = (values[0] - values[1]) / (2 * h)

        def along(g, dirs=dirs):
            return sum((x * d).sum().item() for x, d in zip(g, dirs))

        assert along(grads) == pytest.approx(numeric, rel=1e-5)
        # the check has teeth: the first-order gradient is far off the unrolled objective's
        assert abs(along(first) - numeric) > 1000 * abs(along(grads) - numeric)


def test_second_order_is_darts_procedure():
    """DARTS' architect.py, written out: a model copy at w', ∇α and ∇w' of L_val there, R = 0.01/‖∇w'‖,
    ∇α L_train at w ± R·∇w' by add/sub on the original weights, grad = ∇α L_val − ξ·(g⁺ − g⁻)/(2R)."""
    import copy

    net, train, val = _tiny(1)
    opt = _sgd_with_momentum(net, train)
    ours, _ = Architect(net, order=2).arch_gradient(val, train, w_optimizer=opt)

    weights = net.weight_parameters()
    grads = torch.autograd.grad(net.loss(*train), weights)
    unrolled = copy.deepcopy(net)
    with torch.no_grad():
        for q, p, g in zip(unrolled.weight_parameters(), weights, grads):
            q.copy_(p - LR_W * (MOMENTUM * opt.state[p]["momentum_buffer"] + g + WD * p))
    out = torch.autograd.grad(unrolled.loss(*val), [*unrolled.arch_parameters(), *unrolled.weight_parameters()])
    d_alpha, vector = out[:2], out[2:]
    R = 0.01 / torch.cat([v.flatten() for v in vector]).norm()
    with torch.no_grad():
        for p, v in zip(weights, vector):
            p.add_(v, alpha=R)
    g_plus = torch.autograd.grad(net.loss(*train), net.arch_parameters())
    with torch.no_grad():
        for p, v in zip(weights, vector):
            p.sub_(v, alpha=2 * R)
    g_minus = torch.autograd.grad(net.loss(*train), net.arch_parameters())
    for ga, gp, gm, mine in zip(d_alpha, g_plus, g_minus, ours):
        torch.testing.assert_close(mine, ga - LR_W * (gp - gm) / (2 * R), rtol=1e-7, atol=1e-10)


def test_second_order_leaves_weights_buffers_grads_and_flags_as_found():
    net, train, val = _tiny(3)
    opt = _sgd_with_momentum(net, train)
    weights = net.weight_parameters()
    weights[0].grad = torch.full_like(weights[0], 7.0)  # a gradient the caller holds
    weights[1].requires_grad_(False)                    # a frozen weight
    for a in net.arch_parameters():                     # α frozen between architect steps (as DAMGAN does)
        a.requires_grad_(False)
    state = {k: v.clone() for k, v in net.state_dict().items() if "alphas" not in k}
    buffers = {k: v.clone() for k, v in opt.state_dict()["state"].items()
               for v in [v["momentum_buffer"]]}
    alphas = [a.detach().clone() for a in net.arch_parameters()]
    arch = Architect(net, order=2)
    arch.step(val, train, w_optimizer=opt)
    after = net.state_dict()
    for k, v in state.items():  # every weight and BN statistic bit for bit
        assert torch.equal(after[k], v), k
    assert all(torch.equal(v, opt.state_dict()["state"][k]["momentum_buffer"]) for k, v in buffers.items())
    assert torch.equal(weights[0].grad, torch.full_like(weights[0], 7.0))
    assert all(p.grad is None for p in weights[1:]) and all(a.grad is None for a in net.arch_parameters())
    assert not weights[1].requires_grad and all(p.requires_grad for p in weights[2:])
    assert all(not a.requires_grad for a in net.arch_parameters())
    assert all(not torch.equal(a, b) for a, b in zip(net.arch_parameters(), alphas))


def test_architect_errors():
    net, train, val = _tiny()
    with pytest.raises(ConfigError, match="order=3"):
        Architect(net, order=3)
    arch = Architect(net, order=2)
    with pytest.raises(ConfigError, match="needs the training batch"):
        arch.step(val)
    with pytest.raises(ConfigError, match="unrolls an SGD weight step; got Adam"):
        arch.step(val, train, w_optimizer=torch.optim.Adam(net.weight_parameters()))
    with pytest.raises(ConfigError, match="no nesterov"):
        arch.step(val, train, w_optimizer=torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9,
                                                          nesterov=True))
    with pytest.raises(ConfigError, match="does not depend on the architecture parameters"):
        Architect(net).step(lambda: net.classifier.weight.sum())
