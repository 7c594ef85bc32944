"""The deployed image service emulated on one machine (see README: `make serve`)."""
