"""Build Lambda artifacts: targets, wheels, slimming, zip and image context, size budget."""
