"""Fine-tuning and data preparation commands (``python -m training.<name> --help``).

Everything here calls ``core`` (loaders, prompts, metrics, results store) and never the app,
so a model trained here loads in the CLI, the app and the benchmarks unchanged.
"""
