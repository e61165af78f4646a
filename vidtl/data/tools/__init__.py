"""Offline tools: preparing a frame store or re-encoded copy, checking a dataset, generating the
synthetic dataset, measuring throughput."""
