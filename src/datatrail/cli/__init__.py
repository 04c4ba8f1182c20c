"""The ``datatrail`` command line."""
