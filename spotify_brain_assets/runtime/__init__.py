"""What keeps runs healthy without a person: the environment file, the Dagster instance, dead runs."""
