"""Speed benchmarks comparing the assistant's indexer/search with peer systems."""
