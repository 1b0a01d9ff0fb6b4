from svdd_lightning.diffusion.base import Diffusion, StepOutput

__all__ = ["Diffusion", "StepOutput"]
