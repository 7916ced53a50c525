"""What platform admins do to run a deployment: the task queue's figures, its dead letters
and running them again (console page and API)."""
