"""Developer tools: synthetic data sets and the benchmark."""
