"""What tags mean and how sure they are: WordNet lexicon, word vectors, score calibration and
the sample photos installed packages ship."""
