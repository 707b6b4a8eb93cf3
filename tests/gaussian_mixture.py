"""A 1-d Gaussian-mixture data law whose flow is known in closed form (float64), for the closed-form checks
of the tilted samplers and learners. With z_t = (1 - t) x0 + t eps (t = 0 clean), each component k
(weight pi_k, mean mu_k, sd s_k) gives z_t ~ N((1 - t) mu_k, (1 - t)^2 s_k^2 + t^2). Tilting by exp(lam x0)
keeps the sds, moves the means by lam s_k^2 and reweights by exp(lam mu_k + lam^2 s_k^2 / 2): a mixture again,
so the tilted law's velocity is another instance's."""

import math
from dataclasses import dataclass

import torch


@dataclass
class GaussianMixture1d:
    mu: torch.Tensor
    sigma: torch.Tensor
    weight: torch.Tensor

    @classmethod
    def example(cls) -> "GaussianMixture1d":
        """The two-component base of the checks: means -1, 1.5; sds .5, .7; weights .6, .4 (mean 0)."""
        f = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
        return cls(f(-1.0, 1.5), f(0.5, 0.7), f(0.6, 0.4))

    def components(self, z: torch.Tensor, t: torch.Tensor):
        """Per component, for z (B,), t (B,): log pi_k N(z; (1 - t) mu_k, s^2), E[x0 | z, k], Var[x0 | z, k],
        E[eps | z, k], each (B, K)."""
        z, t = z[:, None], t[:, None]
        s2 = (1 - t) ** 2 * self.sigma**2 + t**2
        r = z - (1 - t) * self.mu
        log_joint = torch.log(self.weight) - 0.5 * r**2 / s2 - 0.5 * torch.log(2 * math.pi * s2)
        return log_joint, self.mu + (1 - t) * self.sigma**2 / s2 * r, self.sigma**2 * t**2 / s2, t / s2 * r

    def velocity(self, z: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        """E[eps - x0 | z_t = z] on latents with one element per row (B, 1, 1, 1); the mixture serves the samplers
        and the learners as a model (.velocity(z, t, cond), cond ignored)."""
        log_joint, mean_x0, _, mean_eps = self.components(z.flatten(), t.flatten().expand(z.numel()))
        post = torch.softmax(log_joint, dim=1)
        return (post * (mean_eps - mean_x0)).sum(1).view_as(z)

    def log_h(self, z: torch.Tensor, t: torch.Tensor, lam: float) -> torch.Tensor:
        """log E[exp(lam x0) | z_t = z] (B,)."""
        log_joint, mean_x0, var_x0, _ = self.components(z.flatten(), t)
        tilted = log_joint + lam * mean_x0 + lam**2 * var_x0 / 2
        return torch.logsumexp(tilted, 1) - torch.logsumexp(log_joint, 1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """grad log p(x) of the clean law, elementwise."""
        flat = x.flatten()[:, None]
        log_k = torch.log(self.weight) - 0.5 * (flat - self.mu) ** 2 / self.sigma**2 - torch.log(self.sigma)
        post = torch.softmax(log_k, dim=1)
        return (post * (self.mu - flat) / self.sigma**2).sum(1).view_as(x)

    def tilted(self, lam: float) -> "GaussianMixture1d":
        """The law p(x) exp(lam x) / Z."""
        w = self.weight * torch.exp(lam * self.mu + lam**2 * self.sigma**2 / 2)
        return GaussianMixture1d(self.mu + lam * self.sigma**2, self.sigma, w / w.sum())

    def moments(self) -> tuple[float, float]:
        mean = (self.weight * self.mu).sum()
        return mean.item(), ((self.weight * (self.sigma**2 + self.mu**2)).sum() - mean**2).item()

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n,) draws."""
        k = torch.multinomial(self.weight, n, replacement=True, generator=generator)
        return self.mu[k] + self.sigma[k] * torch.randn(n, generator=generator, dtype=torch.float64)
