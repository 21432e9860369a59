"""SB3's SAC gradient step with the same maths in fewer ops.

:class:`FewerOpsSACUpdateMixin` overrides ``SAC.train`` (mix it in before ``SAC``). Per gradient step
it computes exactly SB3's losses and applies them in SB3's order; it differs only where the result
cannot change:

* one actor pass on the observations and next observations stacked (``2B`` rows; the next-state
  part is detached, as SB3 computes it under ``no_grad``). At batch 256 a pass costs its per-op
  overhead, not its rows, so this saves one of the two actor passes. Exploration noise is drawn
  in one call of ``2B`` rows instead of two of ``B`` (the same stream, first half then second).
  An eqrobot net runs its MLP on the next-state rows without autograd
  (``EquivariantNet.rows_needing_grad``): their backward pass would only multiply zeros;
* the observation features (the parameter-free ``SpecFlattenExtractor``: keys concatenated, point
  fields scaled) extracted once per batch for ``s`` and once for ``s'``, and fed to the actor pass,
  the target pass and both critic passes (SB3 extracts them in each), where
  :func:`~eqrobot.policies.common.same_features` says every extractor computes the same tensor;
* the target pass under ``torch.inference_mode`` (no version counters or autograd metadata; SB3:
  ``no_grad``);
* the actor loss's backward pass skips the critics' parameters (SB3 computes those gradients and
  discards them: the next critic step starts from ``zero_grad``);
* the three Adam steps, the gradient resets and the entropy-coefficient loss's gradient without
  torch's per-call Python, bit-identical (:mod:`eqrobot.policies.fast_optim`); the critics'
  parameter lists made once;
* the polyak update as two ``torch._foreach`` ops (SB3's ``mul_`` then ``add(alpha=tau)``, same
  rounding) instead of two ops per tensor.

Set ``fewer_ops_update = False`` on the model (or class) for SB3's own ``train`` (e.g. to compare);
gSDE falls back to it too.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from eqrobot.policies.common import InvariantCritic, same_features
from eqrobot.policies.fast_optim import adam_step, ent_coef_grad, zero_grad


def _stack_obs(obs, next_obs):
    if isinstance(obs, dict):
        return {k: torch.cat([obs[k], next_obs[k]], dim=0) for k in obs}
    return torch.cat([obs, next_obs], dim=0)


class FewerOpsSACUpdateMixin:
    """Mix into an SB3 ``SAC`` subclass (before ``SAC`` in the MRO); see the module docstring."""

    fewer_ops_update: bool = True

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_fewer_ops_params"]

    share_obs_features: bool = True
    """Extract the observation features once per batch for the actor, critic and target passes
    (where :func:`~eqrobot.policies.common.same_features` holds); False: each pass extracts its own."""

    target_inference_mode: bool = True
    """Run the target critic pass under ``torch.inference_mode`` (else ``no_grad`` only, as SB3)."""

    def _can_share_features(self) -> bool:
        critics = (self.critic, self.critic_target)
        return (
            all(type(c).forward is InvariantCritic.forward for c in critics)
            and hasattr(self.actor, "action_log_prob_from_features")
            and same_features(self.actor, *critics)
        )

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if not self.fewer_ops_update or self.use_sde:
            return super().train(gradient_steps, batch_size)
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)

        cached = self.__dict__.get("_fewer_ops_params")
        if (
            cached is None
            or cached[0] is not self.critic
            or cached[1] is not self.critic_target
            or cached[4] is not self.actor
        ):
            cached = (self.critic, self.critic_target, list(self.critic.parameters()))
            cached += (list(self.critic_target.parameters()), self.actor, self._can_share_features())
            self.__dict__["_fewer_ops_params"] = cached  # left out of save(): _excluded_save_params
        critic_params, target_params = cached[2], cached[3]
        share = cached[5] and self.share_obs_features
        grad_flags = [p.requires_grad for p in critic_params]
        ent_coef_losses, ent_coefs, actor_losses, critic_losses = [], [], [], []
        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            obs = replay_data.observations
            n = replay_data.actions.shape[0]

            # the current actor on s and s' in one pass (SB3: two, the second under no_grad); an
            # eqrobot net keeps autograd to the s rows (the s' half is detached below)
            if share:  # the observation part of every pass's input, extracted once per batch
                with torch.no_grad():
                    extract = self.critic.extract_features
                    features = extract(obs, self.critic.features_extractor)
                    next_features = extract(replay_data.next_observations, self.critic.features_extractor)
            net = getattr(self.actor, "net", None)
            with net.rows_needing_grad(n) if hasattr(net, "rows_needing_grad") else nullcontext():
                if share:
                    actions_all, log_prob_all = self.actor.action_log_prob_from_features(
                        torch.cat([features, next_features])
                    )
                else:
                    actions_all, log_prob_all = self.actor.action_log_prob(
                        _stack_obs(obs, replay_data.next_observations)
                    )
            actions_pi, log_prob = actions_all[:n], log_prob_all[:n].reshape(-1, 1)
            next_actions, next_log_prob = actions_all[n:].detach(), log_prob_all[n:].detach()

            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = torch.exp(self.log_ent_coef.detach())
                entropy_target = (log_prob + self.target_entropy).detach()
                with torch.no_grad():  # its gradient is written directly below
                    ent_coef_loss = -(self.log_ent_coef * entropy_target).mean()
                ent_coef_losses.append(ent_coef_loss.item())
            else:
                ent_coef = self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                zero_grad(self.ent_coef_optimizer)
                self.log_ent_coef.grad = ent_coef_grad(self.log_ent_coef, entropy_target)
                adam_step(self.ent_coef_optimizer)

            # the target pass needs no autograd state at all: inference mode (its tensors are only
            # read afterwards, by the no-grad target below, never saved for a backward pass)
            with torch.inference_mode() if self.target_inference_mode else torch.no_grad():
                next_q_values = torch.cat(
                    self.critic_target.q_values(next_features, next_actions)
                    if share
                    else self.critic_target(replay_data.next_observations, next_actions),
                    dim=1,
                )
                next_q_values, _ = torch.min(next_q_values, dim=1, keepdim=True)
                next_q_values = next_q_values - ent_coef * next_log_prob.reshape(-1, 1)
            with torch.no_grad():  # a normal tensor: the critic loss's backward saves it
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            if share:
                current_q_values = self.critic.q_values(features, replay_data.actions)
            else:
                current_q_values = self.critic(obs, replay_data.actions)
            critic_loss = 0.5 * sum(F.mse_loss(current_q, target_q_values) for current_q in current_q_values)
            critic_losses.append(critic_loss.item())
            zero_grad(self.critic.optimizer)
            critic_loss.backward()
            adam_step(self.critic.optimizer)

            # the actor loss differentiates through the critics, not into their parameters
            for p in critic_params:
                p.requires_grad_(False)
            try:
                q_values_pi = torch.cat(
                    self.critic.q_values(features, actions_pi) if share else self.critic(obs, actions_pi),
                    dim=1,
                )
                min_qf_pi, _ = torch.min(q_values_pi, dim=1, keepdim=True)
                actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
                actor_losses.append(actor_loss.item())
                zero_grad(self.actor.optimizer)
                actor_loss.backward()
            finally:
                for p, flag in zip(critic_params, grad_flags, strict=True):
                    p.requires_grad_(flag)
            adam_step(self.actor.optimizer)

            if gradient_step % self.target_update_interval == 0:
                with torch.no_grad():  # SB3's polyak_update: target * (1 - tau), then + tau * param
                    torch._foreach_mul_(target_params, 1 - self.tau)
                    torch._foreach_add_(target_params, critic_params, alpha=self.tau)
                    if self.batch_norm_stats:
                        torch._foreach_copy_(self.batch_norm_stats_target, self.batch_norm_stats)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if len(ent_coef_losses) > 0:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
