from svdd_lightning.decoders.base import Decoder, DecodeOutput

__all__ = ["Decoder", "DecodeOutput"]
