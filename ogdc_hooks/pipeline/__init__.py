"""From a claimed job to checks on the commit: push handling, preparing, submitting, following."""
