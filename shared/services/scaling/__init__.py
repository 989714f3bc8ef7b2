"""GPU node pool scaling ahead of demand: a pure policy, a trace simulator, and the tick that acts.

- ``policy``: ``decide(params, observation, state, now)`` -> ``Decision`` (target, reason code, message,
  the state to carry to the next tick). No I/O, no clock.
- ``simulator``: discrete-event replay of a request trace against the real policy and two baselines.
- ``tick``: the timer's gather/decide/act for one pool (adapters, lease, audit).
"""
