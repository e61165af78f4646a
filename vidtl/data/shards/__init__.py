"""Shard stores: many videos per file, local or on S3, streamed rank- and worker-aware."""
