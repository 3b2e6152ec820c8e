"""The Salesforce connector: keeps a sentiment field current on every Case."""
