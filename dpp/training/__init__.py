"""Gradient training with Lightning: the LightningModule, the k-point DataModule, the
callbacks and the DDP strategy. Nothing here reads the configuration."""
