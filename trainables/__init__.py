"""Ray Tune trainables, one module per method; they wrap the plain-PyTorch science core."""
