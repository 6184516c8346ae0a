"""The run folder, without the configuration: its lock, the identity of its bundle and model,
the signals that stop a run, and the tables of a sweep of runs."""
