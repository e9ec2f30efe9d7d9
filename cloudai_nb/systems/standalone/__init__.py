"""The standalone system: jobs are process groups on this machine."""
