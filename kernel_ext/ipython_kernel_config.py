# IPython kernel config that loads cloudai_nb's magics (%cloudai_run, ...) in every kernel, without
# `%load_ext cloudai_nb`. Copy it to one of:
#   {sys.prefix}/etc/ipython/ipython_kernel_config.py            (every kernel of this environment)
#   ~/.ipython/profile_default/ipython_kernel_config.py          (every kernel of this user)
#   $IPYTHONDIR/profile_default/ipython_kernel_config.py
# A copy next to a notebook is NOT read. The kernelspec in ./cloudai does the same per kernel.
c = get_config()  # noqa: F821  (injected by IPython's config loader)
c.InteractiveShellApp.extensions = ["cloudai_nb"]
