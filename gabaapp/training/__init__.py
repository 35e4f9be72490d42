"""Training (loop, metrics, model selection with optuna, sources of simulated spectra)."""
