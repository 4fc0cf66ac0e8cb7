"""A warning before Spotify's refresh token expires (6 months after authorization, external-apis.md §0)."""


import pandas as pd

import dagster as dg

from ...resources import ListeningSourceResource
from ...sources.spotify_resource import AUTHORIZED_AT_ENV, SpotifyResource
from ..factory import listener_check, per_listener

WARN_AFTER_DAYS = 150  # about 5 months: a month's notice before the 6-month expiry
EXPIRES_AFTER_DAYS = 182


def token_age(authorized_at: str | None, now: pd.Timestamp) -> pd.Timedelta | None:
    """Age of the refresh token; None when the authorization date is unknown or unreadable."""
    if not authorized_at:
        return None
    try:
        when = pd.Timestamp(authorized_at)
    except ValueError:
        return None
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    return now - when


@listener_check(asset="ingestions", blocking=False)
def spotify_refresh_token_age(listening_source: ListeningSourceResource) -> dg.AssetCheckResult:
    """Warns when the Spotify refresh token is older than 5 months: Spotify expires it after 6.

    Run `spotify-brain authorize` to get a new one; the check reads the date it records
    (SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT). Passes trivially for the demo listener.
    """
    if not isinstance(listening_source, SpotifyResource):
        return dg.AssetCheckResult(passed=True, metadata={"source": "demo listener: no Spotify token"})
    authorized_at = listening_source.authorization_date()
    age = token_age(authorized_at, listening_source.now())
    if age is None:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"The refresh token's authorization date is unknown ({AUTHORIZED_AT_ENV} is "
                f"{'unreadable' if authorized_at else 'not set'}). Spotify expires refresh tokens 6 months after "
                "authorization; run `spotify-brain authorize` to record a fresh token with its date."
            ),
            metadata={"authorized_at": authorized_at} if authorized_at else {},
        )
    days = round(age / pd.Timedelta(days=1), 1)
    left = round(EXPIRES_AFTER_DAYS - days, 1)
    passed = days <= WARN_AFTER_DAYS
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=None if passed else (
            f"The Spotify refresh token is {days:g} days old; Spotify expires it about {EXPIRES_AFTER_DAYS} days "
            f"after authorization ({max(left, 0):g} days left). Run `spotify-brain authorize` to renew it."
        ),
        metadata={"authorized_at": str(pd.Timestamp(authorized_at)), "age_days": days, "days_until_expiry": left},
    )


@dg.definitions
def defs() -> dg.Definitions:
    return per_listener(spotify_refresh_token_age)
