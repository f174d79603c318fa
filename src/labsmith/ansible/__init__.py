"""Running labsmith's playbooks with ansible-runner, its events turned into progress."""
