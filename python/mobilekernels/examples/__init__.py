"""Runnable examples (``python -m mobilekernels.examples.compress``); need scikit-learn and tqdm."""
