"""The Clever side: the snapshot format, loading it into DataFrames, the sample generator and the API client."""
