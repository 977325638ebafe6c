"""The `license-guard` command line: the admin's way to run the service's code paths by hand."""
