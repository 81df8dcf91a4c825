"""The Glue workflow's CloudFormation template and the helpers that read it."""
