from svdd_lightning.values.base import ValueFunction, ValueOutput

__all__ = ["ValueFunction", "ValueOutput"]
