from svdd_lightning.rewards.base import Reward

__all__ = ["Reward"]
