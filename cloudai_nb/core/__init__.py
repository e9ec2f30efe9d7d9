"""The pure core: models, registry, errors, config loading, node lists, dependency graph, sweeps.

Nothing here starts a process, touches the network, imports pandas or IPython, or imports the
layers above it.
"""
