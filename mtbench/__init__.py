"""mtbench: train and compare multi-task RL agents on Meta-World MT10/MT50."""

__version__ = "0.1.0"
