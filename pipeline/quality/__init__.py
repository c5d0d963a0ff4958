"""Tag quality on labelled real photos: the hand-judged 19-photo key, the WordNet-judged photo
set, and the calibration fitted on their tune halves."""
