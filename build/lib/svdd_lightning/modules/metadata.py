"""What every checkpoint of ours records beside its weights, so loading can check it."""

from __future__ import annotations

from typing import Any

import lightning as L


class CheckpointMetadataMixin(L.LightningModule):
    checkpoint_kind: str = "model"

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {"kind": self.checkpoint_kind, "domain": getattr(self, "domain", None)}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["svdd"] = self.checkpoint_metadata()
