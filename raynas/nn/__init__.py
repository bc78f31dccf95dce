"""Networks: the op zoo, fixed baselines, search cells and supernets (plain PyTorch, no Ray)."""
