"""The ``melodybot`` command line: the root group in ``cli``, its commands beside it by concern."""
