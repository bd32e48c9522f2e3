//! S3 access shared by the packager and the agent.
