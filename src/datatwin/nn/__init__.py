"""Neural conditionals shared by the kinds: a torch trainer (optional extra) and numpy
forward passes over plain float32 arrays, so scoring and sampling never need torch."""
