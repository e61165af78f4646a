"""Helpers with no dependency inside vidtl: the user-error type and atomic file writes."""
