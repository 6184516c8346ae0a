"""The workflows that train.py and evaluate.py dispatch to (gradient, Monte Carlo,
evaluation), on typed settings: dpp.app composes the configuration and translates it once;
these compose the layers below (io, physics, fitting, training, mc, outputs)."""
