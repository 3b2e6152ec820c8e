"""The Slack connector: a bolt app that scores channel messages and writes back."""
