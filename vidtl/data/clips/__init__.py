"""One clip from one video: samplers, transforms and the clip pipeline that joins them to a
frame source; the map-style dataset that is robust to broken files."""
