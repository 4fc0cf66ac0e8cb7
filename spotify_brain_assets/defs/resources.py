"""The deployment's resources: the data root, the listening source(s), the owner's website."""

import dagster as dg

from ..resources import listening_source_from_env, store_from_env
from .factory import household, several
from .reporting.dashboard import website_deployment_from_env


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "store": store_from_env(),
            "listening_source": listening_source_from_env(household=several(household())),
            "website": website_deployment_from_env(),
        }
    )
