"""Integrations that bring texts in from third-party tools (Slack, Salesforce).

Each connector depends on ``core`` only and receives its SDK client and any
background-work callable from the composition root.
"""
