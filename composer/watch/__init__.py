"""`composer watch` and `up --watch`: develop.watch rules acted out on a running stack.

    inotify   recursive inotify watching on the event loop (TreeWatcher)
    rules     which rule a changed path matches, and where it goes in the container
    session   debounced batches of changes -> sync / restart / rebuild / sync+exec
"""
