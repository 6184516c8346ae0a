"""Band-edge states of supercells and nanocrystals from a fitted potential (`dpp-states`)."""
