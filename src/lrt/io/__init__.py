"""Input and output: artifacts (atomic, sha256-checked, versioned), the results envelope, configs and files."""
