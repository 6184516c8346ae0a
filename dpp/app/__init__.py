"""dpp application layer: the only code that reads the Hydra configuration."""
