"""The control plane: runs on the driver, never inside a trial."""
