"""One module per gallery entry; each defines ``ENTRY`` (see :mod:`optimlab.gallery.entry`).

:data:`optimlab.gallery.registry.MODULES` lists them in the order the gallery shows them.
"""
