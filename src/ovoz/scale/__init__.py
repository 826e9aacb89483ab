"""Past one GPU on existing engines: Ray Data for corpora (:mod:`ovoz.scale.data`), Ray Serve for replicas of
the HTTP server (:mod:`ovoz.scale.serve`). ovoz runs no cluster software of its own.

Needs the ``ray`` extra (``pip install 'ovoz[ray]'``); ray is imported only inside the functions that use it.
"""
