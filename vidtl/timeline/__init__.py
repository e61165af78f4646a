"""Timelines of long videos and live streams: what a trained model sees, and when.

One sequential pass over the frames (:mod:`.frame_streams`) feeds sliding windows
(:mod:`.window_plan`, :mod:`.window_assembly`) that a scorer turns into class probabilities
(:mod:`.scoring_loop`); smoothing merges them into segments (:mod:`.segments`), written as CSV
(:mod:`.outputs`) and drawn (:mod:`.picture`).
"""
