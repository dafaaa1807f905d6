"""The learner: multi-task SAC (sac), its replay buffer (buffers), networks and their layers
(policies, layers), precision (precision) and matmul timing (timing). It knows no agent, run or
grid."""
