"""Each stage's Beam ModelHandler, apart from the stage's declaration and model code (as Beam's
ml/inference keeps the ModelHandler interface apart from each framework): importing a stage
module to read its options never imports Beam's inference machinery or torch."""
