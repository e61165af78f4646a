"""Where frames come from: decoders (decord, PyAV, your own), the frame store and the sources
that open a reader for one video."""
