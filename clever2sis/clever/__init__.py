"""The Clever side: the snapshot format, loading it into DataFrames, the sample generator, the API client."""
