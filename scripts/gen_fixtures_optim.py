"""Fixtures for tests/test_optimizers.c and tests/test_schedulers.c.

Run with Debian's python3 (torch 1.13):
    /usr/bin/python3 scripts/gen_fixtures_optim.py

Optimizers: 10-step trajectories of four parameter tensors of odd shapes
under fixed per-step gradients, from torch.optim.SGD / Adam / AdamW and a
transcription of torch_optimizer's Lamb (the package is not in Debian).
Written as float32 by fixtures.py: tests/fixtures/optim_<name>.txt.

Schedulers: the learning rate used by each update (or epoch), from a
transcription of timm's CosineLRScheduler (timm is not in Debian) driven as
the seed pipeline drives it, and from torch's MultiStepLR and LambdaLR.
Written as float64 (%.17g, same text format) to tests/fixtures/sched.txt.

The case tables here and in the tests must agree (same names, options).
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import FIXTURE_DIR, write_fixture  # noqa: E402

STEPS = 10


def f32(x):
    """x rounded to float32, so that C (which stores lr in a float) and
    torch (which keeps a Python double) use the same value."""
    return torch.tensor(x, dtype=torch.float32).item()


# ---- torch_optimizer.Lamb ------------------------------------------------
# Transcribed from torch_optimizer 0.3.0, torch_optimizer/lamb.py
# (https://github.com/jettify/pytorch-optimizer), Lamb.step, unchanged but
# for the sparse-gradient check and the closure.
class Lamb(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6,
                 weight_decay=0, clamp_value=10, adam=False, debias=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.clamp_value = clamp_value
        self.adam = adam
        self.debias = debias
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if len(state) == 0:
                    state['step'] = 0
                    state['exp_avg'] = torch.zeros_like(
                        p, memory_format=torch.preserve_format)
                    state['exp_avg_sq'] = torch.zeros_like(
                        p, memory_format=torch.preserve_format)
                exp_avg, exp_avg_sq = state['exp_avg'], state['exp_avg_sq']
                beta1, beta2 = group['betas']
                state['step'] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                # Paper v3 does not use debiasing.
                if self.debias:
                    bias_correction = math.sqrt(1 - beta2 ** state['step'])
                    bias_correction /= 1 - beta1 ** state['step']
                else:
                    bias_correction = 1
                step_size = group['lr'] * bias_correction
                weight_norm = torch.norm(p.data).clamp(0, self.clamp_value)
                adam_step = exp_avg / exp_avg_sq.sqrt().add(group['eps'])
                if group['weight_decay'] != 0:
                    adam_step.add_(p.data, alpha=group['weight_decay'])
                adam_norm = torch.norm(adam_step)
                if weight_norm == 0 or adam_norm == 0:
                    trust_ratio = 1
                else:
                    trust_ratio = weight_norm / adam_norm
                state['weight_norm'] = weight_norm
                state['adam_norm'] = adam_norm
                state['trust_ratio'] = trust_ratio
                if self.adam:
                    trust_ratio = 1
                p.data.add_(adam_step, alpha=-step_size * trust_ratio)


# ---- optimizer cases -----------------------------------------------------
# groups: 1 = every tensor in one group, 2 = {a, b} and {c, d}.
# lrs/wds: per group; vary: the lr shrinks by 7% of its start every step
# (the trainer sets it from the scheduler before each step).
OPT_CASES = {
    'sgd': (torch.optim.SGD, [
        ('momentum', dict(momentum=0.9), [0.05], [0.0], False),
        ('nesterov', dict(momentum=0.8, nesterov=True), [0.05, 0.02],
         [0.01, 0.1], True),
        ('dampening', dict(momentum=0.9, dampening=0.3), [0.03], [0.001],
         False),
        ('plain', dict(momentum=0), [0.05, 0.1], [0.0, 0.05], False),
    ]),
    'adam': (torch.optim.Adam, [
        ('default', dict(), [1e-2], [0.01], False),
        ('amsgrad', dict(betas=(0.8, 0.99), eps=1e-6, amsgrad=True),
         [1e-2, 3e-2], [0.0, 0.1], True),
        ('nowd', dict(), [2e-2], [0.0], False),
    ]),
    'adamw': (torch.optim.AdamW, [
        ('default', dict(), [1e-2], [0.01], False),
        ('amsgrad', dict(betas=(0.8, 0.99), eps=1e-6, amsgrad=True),
         [1e-2, 3e-2], [0.0, 0.1], True),
        ('nowd', dict(), [2e-2], [0.0], False),
    ]),
    'lamb': (Lamb, [
        ('default', dict(), [1e-2], [0.0], False),
        ('debias', dict(debias=True, betas=(0.85, 0.98), eps=1e-8),
         [1e-2, 2e-2], [0.01, 0.1], True),
        ('clamp', dict(clamp_value=2.5), [2e-2], [0.05], False),
        ('adam', dict(adam=True), [1e-2], [0.01], False),
    ]),
}

STATE_KEYS = ['momentum_buffer', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq']


def initial_params(g):
    # a: norm ~18 > lamb's clamp 10; d: zeros (lamb's zero-norm branch).
    return {
        'a': 3.0 * torch.randn(7, 5, generator=g),
        'b': torch.randn(13, generator=g),
        'c': 0.5 * torch.randn(3, 4, 3, generator=g),
        'd': torch.zeros(6),
    }


def step_grads(g, init):
    scale = {'a': 1.0, 'b': 0.01, 'c': 0.5, 'd': 1.0}
    return {k: torch.stack([scale[k] * torch.randn(v.shape, generator=g)
                            for _ in range(STEPS)])
            for k, v in init.items()}


def run_case(cls, opts, lrs, wds, vary, init, grads):
    ps = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    names = [['a', 'b', 'c', 'd']] if len(lrs) == 1 else [['a', 'b'],
                                                          ['c', 'd']]
    groups = [dict(params=[ps[n] for n in ns], lr=f32(lr),
                   weight_decay=f32(wd))
              for ns, lr, wd in zip(names, lrs, wds)]
    opt = cls(groups, **opts)
    traj = {k: [] for k in ps}
    lr_used = []
    for t in range(STEPS):
        row = []
        for grp, lr in zip(opt.param_groups, lrs):
            grp['lr'] = f32(lr * (1 - 0.07 * t)) if vary else f32(lr)
            row.append(grp['lr'])
        lr_used.append(row)
        for k, p in ps.items():
            p.grad = grads[k][t].clone()
        opt.step()
        for k, p in ps.items():
            traj[k].append(p.detach().clone())
    state = []
    for k, p in ps.items():
        for key in STATE_KEYS:
            if opt.state[p].get(key) is not None:
                state.append(('%s.%s' % (k, key), opt.state[p][key]))
    return lr_used, [f32(w) for w in wds], traj, state


def gen_optimizers():
    for fname, (cls, cases) in OPT_CASES.items():
        g = torch.Generator().manual_seed(1234)
        init = initial_params(g)
        grads = step_grads(g, init)
        out = []
        for k in init:
            out.append(('init.' + k, init[k]))
            out.append(('grad.' + k, grads[k]))
        for name, opts, lrs, wds, vary in cases:
            lr_used, wd, traj, state = run_case(cls, opts, lrs, wds, vary,
                                                init, grads)
            out.append((name + '.lr', lr_used))
            out.append((name + '.wd', wd))
            for k, v in traj.items():
                out.append(('%s.%s' % (name, k), torch.stack(v)))
            for k, v in state:
                out.append(('%s.state.%s' % (name, k), v))
        print(write_fixture('optim_%s.txt' % fname, out))


# ---- timm's CosineLRScheduler --------------------------------------------
# Transcribed from timm (https://github.com/huggingface/pytorch-image-models)
# timm/scheduler/scheduler.py (Scheduler: base values, update_groups,
# step, step_update, _get_values) and timm/scheduler/cosine_lr.py
# (CosineLRScheduler.__init__ and _get_lr); noise left out.
class CosineLRScheduler:
    def __init__(self, optimizer, t_initial, lr_min=0., cycle_mul=1.,
                 cycle_decay=1., cycle_limit=1, warmup_t=0, warmup_lr_init=0,
                 warmup_prefix=False, t_in_epochs=True, k_decay=1.0):
        self.optimizer = optimizer
        self.t_in_epochs = t_in_epochs
        for group in optimizer.param_groups:
            group.setdefault('initial_lr', group['lr'])
        self.base_values = [g['initial_lr'] for g in optimizer.param_groups]
        self.update_groups(self.base_values)
        assert t_initial > 0
        assert lr_min >= 0
        self.t_initial = t_initial
        self.lr_min = lr_min
        self.cycle_mul = cycle_mul
        self.cycle_decay = cycle_decay
        self.cycle_limit = cycle_limit
        self.warmup_t = warmup_t
        self.warmup_lr_init = warmup_lr_init
        self.warmup_prefix = warmup_prefix
        self.k_decay = k_decay
        if self.warmup_t:
            self.warmup_steps = [(v - warmup_lr_init) / self.warmup_t
                                 for v in self.base_values]
            self.update_groups(self.warmup_lr_init)
        else:
            self.warmup_steps = [1 for _ in self.base_values]

    def _get_lr(self, t):
        if t < self.warmup_t:
            lrs = [self.warmup_lr_init + t * s for s in self.warmup_steps]
        else:
            if self.warmup_prefix:
                t = t - self.warmup_t
            if self.cycle_mul != 1:
                i = math.floor(math.log(
                    1 - t / self.t_initial * (1 - self.cycle_mul),
                    self.cycle_mul))
                t_i = self.cycle_mul ** i * self.t_initial
                t_curr = t - (1 - self.cycle_mul ** i) / \
                    (1 - self.cycle_mul) * self.t_initial
            else:
                i = t // self.t_initial
                t_i = self.t_initial
                t_curr = t - (self.t_initial * i)
            gamma = self.cycle_decay ** i
            lr_max_values = [v * gamma for v in self.base_values]
            k = self.k_decay
            if i < self.cycle_limit:
                lrs = [self.lr_min + 0.5 * (lr_max - self.lr_min) *
                       (1 + math.cos(math.pi * t_curr ** k / t_i ** k))
                       for lr_max in lr_max_values]
            else:
                lrs = [self.lr_min for _ in self.base_values]
        return lrs

    def _get_values(self, t, on_epoch=True):
        proceed = (on_epoch and self.t_in_epochs) or \
            (not on_epoch and not self.t_in_epochs)
        if not proceed:
            return None
        return self._get_lr(t)

    def step(self, epoch):
        values = self._get_values(epoch, on_epoch=True)
        if values is not None:
            self.update_groups(values)

    def step_update(self, num_updates):
        values = self._get_values(num_updates, on_epoch=False)
        if values is not None:
            self.update_groups(values)

    def update_groups(self, values):
        if not isinstance(values, (list, tuple)):
            values = [values] * len(self.optimizer.param_groups)
        for param_group, value in zip(self.optimizer.param_groups, values):
            param_group['lr'] = value


def dummy_optimizer(base):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)


def timm_sequence(n, base, t_in_epochs, **kw):
    """lr used by each of n updates (epochs if t_in_epochs), driven as the
    seed pipeline does: step_update(u + 1) after update u, or step(e + 1)
    at the end of epoch e."""
    opt = dummy_optimizer(base)
    sched = CosineLRScheduler(opt, t_in_epochs=t_in_epochs, **kw)
    out = []
    for t in range(n):
        out.append(opt.param_groups[0]['lr'])
        if t_in_epochs:
            sched.step(t + 1)
        else:
            sched.step_update(t + 1)
    return out


def torch_sequence(n, base, make):
    """lr used by each of n updates under a torch scheduler stepped after
    every update (Lightning's interval "step")."""
    opt = dummy_optimizer(base)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]['lr'])
        opt.step()
        sched.step()
    return out


def multistep_sequence(n, base, milestones, gamma, warmup_iter,
                       warmup_init_lr):
    """The seed's MultiStepLRWarmup warmup branch, then MultiStepLR."""
    plain = torch_sequence(n, base, lambda o: torch.optim.lr_scheduler.
                           MultiStepLR(o, milestones, gamma))
    return [warmup_init_lr + (base - warmup_init_lr) / warmup_iter * t
            if t < warmup_iter else plain[t] for t in range(n)]


def linear_lambda(warmup, total):
    # transformers.get_linear_schedule_with_warmup's lr_lambda.
    def lr_lambda(current_step):
        if current_step < warmup:
            return float(current_step) / float(max(1, warmup))
        return max(0.0, float(total - current_step) /
                   float(max(1, total - warmup)))
    return lr_lambda


def linear_formula(n, base, warmup, lr_init, total, lr_min):
    # Warmup as timm's, decay as transformers' but towards lr_min.
    out = []
    for t in range(n):
        if t < warmup:
            out.append(lr_init + t * ((base - lr_init) / warmup))
        else:
            frac = max(0.0, (total - t) / max(1, total - warmup))
            out.append(lr_min + (base - lr_min) * frac)
    return out


def constant_formula(n, base, warmup, lr_init):
    return [lr_init + t * ((base - lr_init) / warmup) if t < warmup else base
            for t in range(n)]


def gen_schedulers():
    B = 5e-4
    cases = [
        # name, values; runs with steps_per_epoch 37, 8 epochs = 296 updates
        ('cosine_run', timm_sequence(
            320, B, False, t_initial=296, lr_min=1e-5, warmup_t=1.5 * 37,
            warmup_lr_init=1e-6)),
        ('cosine_cycles', timm_sequence(
            320, B, False, t_initial=40, lr_min=1e-6, cycle_mul=2,
            cycle_decay=0.5, cycle_limit=3, warmup_t=10, warmup_lr_init=1e-5,
            warmup_prefix=True)),
        ('cosine_kdecay', timm_sequence(
            260, B, False, t_initial=100, lr_min=2e-5, cycle_decay=0.5,
            cycle_limit=2, warmup_t=7, k_decay=2)),
        ('cosine_shrink', timm_sequence(
            119, B, False, t_initial=60, cycle_mul=0.5, cycle_limit=4,
            k_decay=0.5)),
        ('cosine_grow', timm_sequence(
            400, B, False, t_initial=150, cycle_mul=1.5, cycle_decay=0.7,
            cycle_limit=3, k_decay=1.5, warmup_t=12)),
        # epochs: steps_per_epoch 50, 30 epochs
        ('cosine_epochs', timm_sequence(
            36, B, True, t_initial=30, lr_min=1e-5, warmup_t=3,
            warmup_lr_init=1e-6)),
        ('multistep_warmup', multistep_sequence(
            300, B, [60, 150, 150, 220], 0.5, 25, 1e-5)),
        ('multistep_plain', multistep_sequence(150, B, [40, 100], 0.1, 0, 0)),
        ('multistep_epochs', multistep_sequence(20, B, [5, 12], 0.3, 0, 0)),
        ('constant_warmup', constant_formula(60, B, 20, 1e-6)),
        ('constant_epochs', constant_formula(10, B, 2, 0.0)),
        # transformers' schedule: warmup 30, 200 updates in the run
        ('linear_run', torch_sequence(
            220, B, lambda o: torch.optim.lr_scheduler.LambdaLR(
                o, linear_lambda(30, 200)))),
        # steps_per_epoch 20, warmup 0.5 epoch = 10 updates, t_total 180
        ('linear_min', linear_formula(200, B, 10, 1e-6, 180, 1e-5)),
    ]
    path = os.path.join(FIXTURE_DIR, 'sched.txt')
    with open(path, 'w') as f:
        for name, vals in cases:
            f.write('tensor %s 1 %d\n' % (name, len(vals)))
            for i in range(0, len(vals), 4):
                f.write(' '.join('%.17g' % v for v in vals[i:i + 4]) + '\n')
    print(path)


if __name__ == '__main__':
    gen_optimizers()
    gen_schedulers()
