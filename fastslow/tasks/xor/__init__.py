"""The continuous-XOR tutorial as a task: data, a 2-4-1 tanh classifier, training, evaluation."""

from fastslow.tasks.xor.train import XorConfig, XorResult, evaluate, make_data, train_xor
from fastslow.zoo.models import xor_net

__all__ = ["XorConfig", "XorResult", "evaluate", "make_data", "train_xor", "xor_net"]
