"""``cs231n.simclr``: the SimCLR notebook's loss, data, model and training loops (PyTorch)."""
