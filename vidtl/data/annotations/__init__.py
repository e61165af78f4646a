"""Dataset annotations -> :class:`~vidtl.data.annotations.records.VideoIndex`: the formats
(UCF101, HMDB51, Kinetics, folder, CSV, your own), missing files and exclusion lists."""
